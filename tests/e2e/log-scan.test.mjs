// No patient-identifiable data in the logs, at any level (issue 13): the window and hubctl run
// with INPATIENT_HUB_LOG=trace and their logs in one folder (INPATIENT_HUB_LOG_DIR) while the
// flows that handle NHS numbers and names run — a ward patient added with a distinctive name
// and NHS number, a task naming them, a SystmOne search and NHS-number lookup, a link confirmed,
// a note with distinctive text written, approved and filed — and then every line of every log
// file is scanned for each spelling of those NHS numbers, the names and the note's text.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, By, hubctl, makeDataDir, removeDataDir, simctl, startDriver, startSimulator, step } from "./harness.mjs";

const WARD_FIRST = "Zebulon";
const WARD_SURNAME = "Quillfeather";
const WARD_NHS = "4010232137"; // valid (Modulus 11), no simulator patient has it
const SIM_NHS = "9990000018"; // the simulator's fictitious Siân O'Brien
const NOTE_PHRASE = "marmalade-coloured bruising";

/** 10 digits, and 3-3-4 with spaces or hyphens. */
function spellings(nhs) {
  const [a, b, c] = [nhs.slice(0, 3), nhs.slice(3, 6), nhs.slice(6)];
  return [nhs, `${a} ${b} ${c}`, `${a}-${b}-${c}`];
}

async function waitConnected(app) {
  const strip = await app.find("systmone-status");
  await app.waitFor(async () => (await strip.getAttribute("data-state")) === "connected",
    "the status strip never showed SystmOne connected", 20_000);
}

describe("logs carry no patient-identifiable data", () => {
  let driver;
  let simulator;
  let logDir;
  const dirs = [];

  before(async () => {
    const simDir = makeDataDir();
    dirs.push(simDir);
    // The simulator (a test tool with fictitious data) logs elsewhere: only the app and hubctl
    // are scanned. Everything started after this point — tauri-driver, the app it launches,
    // hubctl — inherits the trace filter and the shared log folder.
    simulator = await startSimulator(simDir);
    simulator.dir = simDir;
    logDir = mkdtempSync(join(tmpdir(), "inpatient-hub-e2e-logs-"));
    dirs.push(logDir);
    process.env.INPATIENT_HUB_LOG = "trace";
    process.env.INPATIENT_HUB_LOG_DIR = logDir;
    driver = await startDriver();
  });

  after(async () => {
    await simulator?.stop();
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("the window's and hubctl's trace logs of patient flows hold no NHS number, name or note text", async () => {
    const dataDir = makeDataDir({ demo: true });
    dirs.push(dataDir);
    hubctl(dataDir, "user", "Nurse Able");
    const wardPatient = hubctl(dataDir, "patients", "add", "--bed", "Bed 7", "--name", `${WARD_FIRST} ${WARD_SURNAME}`,
      "--nhs", spellings(WARD_NHS)[1]);
    hubctl(dataDir, "tasks", "add", "--patient", String(wardPatient.id), "--title", `Dress ${WARD_SURNAME}'s leg wound`);

    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", simulator.address]);
    try {
      await step(app, "log-scan-search-and-link", async () => {
        await waitConnected(app);
        await app.navigate("lookup");
        await app.fill("lookup-surname", "O'Br");
        await app.fill("lookup-first-name", "Si");
        await app.click("lookup-submit");
        await app.find("lookup-result-0-name", 20_000);
        await app.click("lookup-choose-0");
        await app.findById("match-new");
        // NHS.UK radios draw a styled circle over the real input: press its label, as a person would.
        await app.driver.findElement(By.css('label[for="match-new"]')).click();
        await app.fill("match-new-bed", "Bed 8");
        await app.click("match-review");
        await app.find("review-table", 20_000);
        await app.click("review-confirm");
        await app.waitFor(async () => hubctl(dataDir, "patients", "list").some((p) => p.nhs_number === SIM_NHS),
          "the linked patient never reached the ward list", 20_000);
      });

      await step(app, "log-scan-lookup-by-nhs", async () => {
        // Confirming the link went back to the board.
        await app.waitFor(async () => (await app.driver.executeScript("return location.hash")) === "#board",
          "confirming the link never went back to the board");
        await app.navigate("lookup");
        await app.fill("lookup-surname", "");
        await app.fill("lookup-first-name", "");
        await app.fill("lookup-nhs", spellings(SIM_NHS)[1]);
        await app.click("lookup-submit");
        await app.find("lookup-result-0-name", 20_000);
      });

      await step(app, "log-scan-note", async () => {
        const linked = hubctl(dataDir, "patients", "list").find((p) => p.nhs_number === SIM_NHS);
        await app.navigate("notes");
        await app.select("notes-patient", String(linked.id));
        await app.fill("new-note-text", `Seen on the ward round: ${NOTE_PHRASE} over the left shin.`);
        await app.click("new-note-start");
        await app.waitFor(async () => ((await app.value("note-editor")) ?? "").includes(NOTE_PHRASE),
          "the new draft never opened in the editor");
        await app.click("note-preview");
        await app.find("note-preview-lines");
        await app.click("note-approve");
        await app.waitFor(async () => /Note approved/.test(await app.text("notice")), "no approval notice");
        await app.waitFor(async () => simctl(simulator.dir, "events", SIM_NHS).some((e) => e.narrative.includes(NOTE_PHRASE)),
          "the note was never filed in the simulator", 30_000);
      });
    } finally {
      await app.close();
    }
    // hubctl reads after the window, into the same folder.
    hubctl(dataDir, "--systmone", simulator.address, "lookup", SIM_NHS);
    hubctl(dataDir, "notes", "list");

    const needles = [
      ...spellings(WARD_NHS),
      ...spellings(SIM_NHS),
      WARD_FIRST,
      WARD_SURNAME,
      "Siân",
      "O'Brien",
      NOTE_PHRASE,
    ].map((n) => n.toLowerCase());
    const files = readdirSync(logDir);
    assert.ok(files.some((f) => f.startsWith("inpatient-hub.")), `the window wrote a log file: ${files}`);
    assert.ok(files.some((f) => f.startsWith("hubctl.")), `hubctl wrote a log file: ${files}`);
    let lines = 0;
    let detailed = 0;
    for (const file of files) {
      for (const line of readFileSync(join(logDir, file), "utf8").split("\n")) {
        lines++;
        if (/ (TRACE|DEBUG) /.test(line)) detailed++;
        const lower = line.toLowerCase();
        const found = needles.find((n) => lower.includes(n));
        assert.equal(found, undefined, `${file} carries patient data (${found}): ${line}`);
      }
    }
    assert.ok(lines > 10, `only ${lines} log lines: the scan saw too little`);
    assert.ok(detailed > 0, "no debug or trace line: INPATIENT_HUB_LOG=trace was not applied");
  });
});
