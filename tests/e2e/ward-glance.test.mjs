// A whole ward at a glance (issue 13): at 1280×800 the board shows every bed of a 30-bed ward on
// one screen, each with what is overdue and what is due next, and the keyboard shortcuts move
// between patients, open one's tasks, start a new task and complete the focused task.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { App, hubctl, makeDataDir, removeDataDir, startDriver, step } from "./harness.mjs";

const BEDS = 30;

function day(offset) {
  const d = new Date(Date.now() + offset * 24 * 3600 * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Presses keys on whatever has the keyboard focus, as a person would. */
async function press(app, ...keys) {
  const actions = app.driver.actions({ async: true });
  for (const key of keys) actions.sendKeys(key);
  await actions.perform();
}

/**
 * A cell's text. Read from the DOM: WebKitWebDriver reports "" for text in these one-line cells
 * (cut short with overflow: hidden), although it is on screen (the fit check measures the rows).
 */
async function cellText(app, testid) {
  await app.find(testid);
  return app.driver.executeScript(`return document.querySelector('[data-testid="${testid}"]').textContent`);
}

async function activeId(app) {
  return app.driver.executeScript("return document.activeElement ? document.activeElement.id : ''");
}

/**
 * Seeds a 30-bed ward: one hubctl call per patient, and tasks (one call each) only on every third
 * bed, to keep the set-up to about 50 calls. Returns the patients in bed order.
 */
function seedWard(dataDir) {
  const patients = [];
  for (let bed = 1; bed <= BEDS; bed++) {
    patients.push(hubctl(dataDir, "patients", "add", "--bed", `Bed ${bed}`, "--name", `Patient Number${bed}`));
  }
  for (let bed = 1; bed <= BEDS; bed += 3) {
    const id = String(patients[bed - 1].id);
    hubctl(dataDir, "tasks", "add", "--patient", id, "--title", `Bloods overdue ${bed}`, "--due", `${day(-1)} 08:00`);
    hubctl(dataDir, "tasks", "add", "--patient", id, "--title", `Obs next ${bed}`, "--due", `${day(1)} 09:30`);
  }
  return patients;
}

describe("a whole ward at a glance", () => {
  let driver;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("30 beds fit one 1280×800 screen with overdue and due next, and the shortcuts work", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const started = Date.now();
    const patients = seedWard(dataDir);
    const seedMs = Date.now() - started;
    assert.ok(seedMs < 60_000, `seeding 30 beds took ${seedMs} ms`);

    const app = await App.launch(driver, dataDir);
    try {
      await step(app, "glance-fits", async () => {
        await app.driver.manage().window().setRect({ width: 1280, height: 800 });
        await app.waitFor(
          async () => (await app.driver.executeScript("return window.innerWidth")) <= 1280,
          "the window did not take the 1280×800 size",
        );
        await app.waitFor(
          async () => (await app.driver.findElements(app.byTestId(`overview-${patients[BEDS - 1].id}`))).length === 1,
          "the 30th bed never appeared in the overview",
        );
        const fit = await app.driver.executeScript(`
          const rows = [...document.querySelectorAll("tr[data-overview-patient]")];
          const last = rows[rows.length - 1].getBoundingClientRect();
          return { rows: rows.length, bottom: last.bottom, height: window.innerHeight, scrolled: window.scrollY,
                   width: window.innerWidth };`);
        assert.equal(fit.rows, BEDS, "one row per patient");
        assert.equal(fit.scrolled, 0, "nothing was scrolled");
        assert.ok(fit.height <= 800 && fit.height >= 700, `the window is about 800 px tall (${fit.height})`);
        assert.ok(fit.bottom <= fit.height, `the 30th bed's row ends at ${fit.bottom} px, below the ${fit.height} px window`);
      });

      await step(app, "glance-content", async () => {
        const first = patients[0];
        assert.equal(await cellText(app, `overview-${first.id}-name`), "Patient Number1");
        assert.match(await cellText(app, `overview-${first.id}-overdue`), /^1 overdue: Bloods overdue 1 \(Yesterday 08:00\)$/);
        assert.equal(await cellText(app, `overview-${first.id}-due-next`), "Obs next 1 (Tomorrow 09:30)");
        assert.equal(await cellText(app, `overview-${first.id}-open-count`), "2");
        assert.equal(await cellText(app, `overview-${first.id}-sync`), "Not linked");
        const second = patients[1];
        assert.equal(await cellText(app, `overview-${second.id}-overdue`), "None");
        assert.equal(await cellText(app, `overview-${second.id}-due-next`), "Nothing due");
        assert.equal(await cellText(app, `overview-${second.id}-open-count`), "0");
        assert.equal(await (await app.find(`overview-${first.id}`)).getAttribute("data-overdue"), "1");
      });

      await step(app, "shortcut-find", async () => {
        await app.driver.executeScript("document.getElementById('board-title').focus()");
        await press(app, "f");
        assert.equal(await activeId(app), "find-patient", "F puts the keyboard in Find a patient");
        await press(app, "Bed 13");
        assert.equal(await app.text("find-patient-status"), "1 patient matches");
        await press(app, "\uE007"); // Enter
        assert.equal(await activeId(app), `overview-${patients[12].id}-open`, "Enter goes to the first match");
        await app.driver.executeScript("const f = document.getElementById('find-patient'); f.value = ''; f.dispatchEvent(new Event('input'));");
      });

      await step(app, "shortcut-next-previous", async () => {
        await press(app, "j");
        assert.equal(await activeId(app), `overview-${patients[13].id}-open`, "J: next patient");
        await press(app, "\uE015"); // ArrowDown
        assert.equal(await activeId(app), `overview-${patients[14].id}-open`, "Down arrow: next patient");
        await press(app, "k", "k");
        assert.equal(await activeId(app), `overview-${patients[12].id}-open`, "K: previous patient");
        await press(app, "\uE013"); // ArrowUp
        assert.equal(await activeId(app), `overview-${patients[11].id}-open`, "Up arrow: previous patient");
      });

      const bed10 = patients[9];
      await step(app, "open-patient-tasks", async () => {
        await press(app, "k", "k");
        assert.equal(await activeId(app), `overview-${bed10.id}-open`);
        await press(app, "\uE007"); // Enter on the bed link
        assert.equal(await activeId(app), `patient-${bed10.id}-heading`, "Enter opens that patient's tasks");
      });

      await step(app, "shortcut-complete", async () => {
        const [overdue] = await app.driver.executeScript(`
          return [...document.querySelectorAll('section[data-patient-id="${bed10.id}"] tr[data-task-id]')]
            .filter((r) => r.textContent.includes("Bloods overdue 10")).map((r) => Number(r.dataset.taskId));`);
        assert.ok(overdue, "the overdue task is in the patient's block");
        for (let i = 0; i < 10 && !(await activeId(app)).startsWith(`task-${overdue}-`); i++) await press(app, "\uE004"); // Tab
        assert.match(await activeId(app), new RegExp(`^task-${overdue}-`), "Tab reaches the task's buttons");
        await press(app, "c");
        await app.waitFor(async () => !(await app.exists(`task-${overdue}`)), "C never completed the focused task");
        assert.match(await app.text("notice"), /Task completed: Bloods overdue 10/);
        await app.waitFor(
          async () => (await cellText(app, `overview-${bed10.id}-overdue`)) === "None",
          "the overview still shows the completed task as overdue",
        );
      });

      await step(app, "shortcut-new-task", async () => {
        await app.driver.executeScript(`document.getElementById("overview-${patients[4].id}-open").focus()`);
        await press(app, "n");
        assert.equal(await activeId(app), "task-title", "N puts the keyboard in the new task's title");
        assert.equal(await app.value("task-patient"), String(patients[4].id), "for the patient the keyboard was on");
        await press(app, "nshortcut typed, not a command");
        assert.equal(await app.value("task-title"), "nshortcut typed, not a command", "keys typed in a box stay text");
      });
    } finally {
      await app.close();
    }
  });
});
