// Patient lookup end to end against the bundled SystmOne simulator: NHS numbers checked as
// they are typed, a one-detail search refused before anything is sent, and a two-detail search
// (a surname prefix with an apostrophe) through choosing, side-by-side review and linking, until
// the ward board shows the patient's NHS number.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { App, By, hubctl, makeDataDir, removeDataDir, reservePort, simctl, startDriver, startSimulator, step } from "./harness.mjs";

const USER = "Nurse Able";

function searchesSent(simDir) {
  return simctl(simDir, "log").filter((entry) => entry.function === "PatientSearch").length;
}

async function waitConnected(app) {
  const strip = await app.find("systmone-status");
  await app.waitFor(async () => (await strip.getAttribute("data-state")) === "connected",
    "the status strip never showed SystmOne connected", 20_000);
}

describe("patient lookup", () => {
  let driver;
  let simulator;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await simulator?.stop();
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("search by two details, review side by side, link, and see the NHS number on the board", async () => {
    const dataDir = makeDataDir({ demo: true });
    const simDir = makeDataDir();
    dirs.push(dataDir, simDir);
    hubctl(dataDir, "user", USER);
    simulator = await startSimulator(simDir);
    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", simulator.address]);
    try {
      await step(app, "lookup-open", async () => {
        await waitConnected(app);
        await app.navigate("lookup");
        assert.match(await app.driver.executeScript("return document.title"), /Patient lookup/);
      });

      await step(app, "lookup-nhs-as-typed", async () => {
        const feedback = await app.find("lookup-nhs-feedback");
        await app.fill("lookup-nhs", "999 000");
        assert.equal(await feedback.getAttribute("data-state"), "incomplete");
        assert.match(await feedback.getText(), /6 of 10 digits/);
        await (await app.findById("lookup-nhs")).sendKeys("0019");
        assert.equal(await feedback.getAttribute("data-state"), "invalid", "a wrong check digit is flagged at once");
        assert.match(await feedback.getText(), /check digit does not match/);
        await app.fill("lookup-nhs", "9990000018");
        assert.equal(await feedback.getAttribute("data-state"), "valid");
        assert.match(await feedback.getText(), /999 000 0018/);
        await app.fill("lookup-nhs", "");
      });

      await step(app, "lookup-one-field-refused", async () => {
        const before = searchesSent(simDir);
        await app.fill("lookup-surname", "O'Br");
        await app.click("lookup-submit");
        const summary = await app.find("error-summary");
        await app.waitFor(() => summary.isDisplayed(), "the error summary never showed");
        assert.match(await summary.getText(), /at least two of surname, first name/);
        assert.equal(searchesSent(simDir), before, "a one-detail search must not reach SystmOne");
      });

      await step(app, "lookup-two-fields", async () => {
        // A slow SystmOne (3 s per answer): the window says it is waiting, and for how long.
        simctl(simDir, "set-faults", "slow=1");
        await app.fill("lookup-first-name", "Si");
        await app.click("lookup-submit");
        await app.waitFor(async () => {
          // The message is redrawn every second and as the queue moves: read it afresh each time.
          const text = await app.driver.executeScript(
            'const el = document.querySelector(\'[data-testid="lookup-waiting-text"]\'); return el ? el.textContent : "";');
          return /waiting [1-9]\d* s so far\. (Sent: waiting for SystmOne's answer|Your search is number \d+ in the queue)/.test(text);
        }, "the search never showed how long it had waited and where it was in the queue");
        const name = await app.find("lookup-result-0-name", 20_000);
        simctl(simDir, "set-faults", "none");
        assert.equal(await (await app.findById("lookup-waiting")).isDisplayed(), false, "the waiting message goes once answered");
        assert.equal(await name.getText(), "Siân O'Brien");
        assert.equal(await app.text("lookup-result-0-nhs"), "999 000 0018");
        assert.equal(await (await app.findById("error-summary")).isDisplayed(), false);
        assert.equal(await app.exists("lookup-result-1"), false, "only one simulator patient matches");
        assert.equal(searchesSent(simDir), 1);
      });

      await step(app, "lookup-choose-new-patient", async () => {
        await app.click("lookup-choose-0");
        const newRadio = await app.findById("match-new");
        assert.equal(await newRadio.isSelected(), true, "with nobody on the ward, a new ward patient is proposed");
        assert.equal(await app.value("match-new-name"), "Siân O'Brien", "the name is prefilled");
        await app.fill("match-new-bed", "Bay 1 Bed 2");
        await app.click("match-review");
        await app.find("review-table", 20_000);
        const rows = {};
        for (const row of await app.driver.findElements(By.css('[data-testid="review-table"] tbody tr'))) {
          const cells = await row.findElements(By.css("th, td"));
          rows[await row.getAttribute("data-label")] = {
            local: await cells[1].getText(),
            systmone: await cells[2].getText(),
            differs: await row.getAttribute("data-differs"),
          };
        }
        assert.deepEqual(rows.Name, { local: "Siân O'Brien", systmone: "Siân O'Brien", differs: "false" });
        assert.equal(rows["NHS number"].systmone, "999 000 0018");
        assert.equal(rows["Date of birth"].systmone, "14 Mar 1984");
      });

      await step(app, "lookup-confirm", async () => {
        await app.click("review-confirm");
        await app.waitFor(async () => (await app.driver.executeScript("return location.hash")) === "#board",
          "confirming goes back to the board");
        const section = await app.driver.wait(async () => {
          for (const el of await app.driver.findElements(By.css("section[data-patient-id]"))) {
            if ((await el.getText()).includes("Bay 1 Bed 2: Siân O'Brien")) return el;
          }
          return false;
        }, 10_000, "the linked patient never appeared on the board");
        assert.match(await section.getText(), /NHS number 999 000 0018/);
        await app.waitFor(async () => /Linked Bay 1 Bed 2/.test(await app.text("notice")), "no confirmation notice");
        const patients = hubctl(dataDir, "patients", "list");
        const linked = patients.find((p) => p.nhs_number === "9990000018");
        // Connected: the link is recorded under SystmOne's logged-on user (the simulator's demo
        // nurse), never the label typed with `hubctl user`.
        const by = "Mx Demo Staff-Nurse";
        assert.ok(linked?.systmone_linked_by === by, `linked by ${by}: ${JSON.stringify(linked)}`);
      });

      await step(app, "lookup-labels", async () => {
        for (const view of ["lookup", "notes", "outbox"]) {
          await app.navigate(view);
          const unlabelled = await app.driver.executeScript(`
            return [...document.querySelectorAll("input, select, textarea, button")]
              .filter((el) => el.offsetParent !== null || el.closest(".nhsuk-checkboxes, .nhsuk-radios"))
              .filter((el) => !el.closest("[hidden]"))
              .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.textContent.trim())
              .map((el) => el.id || el.outerHTML.slice(0, 80));`);
          assert.deepEqual(unlabelled, [], `unlabelled controls on ${view}`);
        }
      });

      await step(app, "lookup-refresh", async () => {
        await app.navigate("lookup");
        const patientId = hubctl(dataDir, "patients", "list").find((p) => p.nhs_number === "9990000018").id;
        await app.click(`refresh-${patientId}`);
        await app.find("refresh-result", 20_000);
        assert.match(await app.text(`linked-${patientId}-as-of`), /^Details as of /);
      });

      await step(app, "lookup-deceased-is-flagged", async () => {
        // SystmOne records a death: the result says so in red, not only in the record.
        const deceased = simctl(simDir, "patients", "--limit", "240").find((p) => p.date_of_death);
        assert.ok(deceased, "the simulator has a deceased fictitious patient");
        await app.navigate("board"); // a fresh lookup view (navigating to the open view is no change)
        await app.navigate("lookup");
        await app.fill("lookup-surname", "");
        await app.fill("lookup-first-name", "");
        await app.fill("lookup-nhs", deceased.nhs_number);
        await app.click("lookup-submit");
        const warning = await app.find("lookup-result-0-warning-0", 20_000);
        assert.match(await warning.getText(), new RegExp(`Deceased \\(date of death ${deceased.date_of_death}\\)`));
      });
    } finally {
      await app.close();
    }
  });

  test("with SystmOne unavailable, a search falls back to the ward's own patients with a clear banner", async () => {
    const dataDir = makeDataDir({ demo: true });
    dirs.push(dataDir);
    hubctl(dataDir, "user", USER);
    hubctl(dataDir, "patients", "add", "--bed", "Bed 9", "--name", "Siân O'Brien");
    const port = await reservePort(); // nothing listens here: SystmOne is not running
    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", `127.0.0.1:${port}`]);
    try {
      await step(app, "fallback-search", async () => {
        await app.navigate("lookup");
        await app.fill("lookup-surname", "o’br");
        await app.fill("lookup-first-name", "Si");
        await app.click("lookup-submit");
        const banner = await app.find("lookup-fallback", 20_000);
        assert.match(await banner.getText(), /SystmOne not available/);
        assert.match(await banner.getText(), /patients already on this ward only/);
        assert.equal(await app.text("lookup-result-0-name"), "Siân O'Brien");
        assert.match(await (await app.find("lookup-result-0")).getText(), /On this ward: Bed 9/);
        assert.equal(await app.exists("lookup-choose-0"), false, "a ward-only result cannot be linked");
        assert.equal(await (await app.findById("error-summary")).isDisplayed(), false, "a fallback is not an error");
      });
    } finally {
      await app.close();
    }
  });
});
