// Case notes end to end: a note with markup-like text is written, autosaved, previewed line by
// line, approved, and filed by the window's background worker into the simulator exactly once;
// and with SystmOne away, the clipboard path: approve, paste, confirm — after which SystmOne
// (started later) never receives the note.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Key } from "selenium-webdriver";
import {
  App,
  By,
  hubctl,
  makeDataDir,
  removeDataDir,
  reservePort,
  simctl,
  startDriver,
  startSimulator,
  startSimulatorOn,
  step,
} from "./harness.mjs";

const USER = "Nurse Able";
const FIRST_LINE = 'Obs stable. <b>tags</b> & "quotes"';
const SECOND_LINE = "Plan: review at 16:00";

async function waitState(app, expected, timeout = 20_000) {
  const strip = await app.find("systmone-status");
  await app.waitFor(async () => (await strip.getAttribute("data-state")) === expected,
    `the status strip never showed SystmOne ${expected}`, timeout);
}

/** Writes a note for the (only) patient through the notes view; returns its id. */
async function writeNote(app, text) {
  await app.navigate("notes");
  await app.fill("new-note-text", text);
  await app.click("new-note-start");
  const editor = await app.findById("note-editor");
  await app.waitFor(async () => (await editor.getAttribute("value")) === text || (await app.value("note-editor")) === text,
    "the new draft never opened in the editor");
  // Read in one go: the list is redrawn whenever a note changes (autosave included), so a found row
  // may be replaced before it is read.
  const testid = await app.driver.wait(
    async () => app.driver.executeScript('const row = document.querySelector(\'tr[data-testid^="note-"][data-status="draft"]\'); return row ? row.dataset.testid : null;'),
    10_000,
    "no draft row",
  );
  return Number(testid.replace(/^note-/, ""));
}

/** Clicks a button in a part of the view redrawn as notes and the outbox change, again if it was replaced meanwhile. */
async function clickFresh(app, id) {
  for (let attempt = 0; ; attempt++) {
    try {
      await app.click(id);
      return;
    } catch (error) {
      if (error.name !== "StaleElementReferenceError" || attempt >= 3) throw error;
    }
  }
}

/** The text of `[data-testid=id]` read in one go (the views redraw as the backend reports changes), or null. */
async function liveText(app, id) {
  return app.driver.executeScript(`const el = document.querySelector('[data-testid="${id}"]'); return el ? el.textContent : null;`);
}

async function previewLines(app) {
  await app.click("note-preview");
  await app.find("note-preview-lines");
  const lines = [];
  for (const li of await app.driver.findElements(By.css('[data-testid="note-preview-lines"] li'))) lines.push(await li.getText());
  return lines;
}

describe("case notes", () => {
  let driver;
  const dirs = [];
  const simulators = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    for (const s of simulators) await s.stop();
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("a note is previewed, approved and filed in SystmOne exactly once", async () => {
    const dataDir = makeDataDir({ demo: true });
    const simDir = makeDataDir();
    dirs.push(dataDir, simDir);
    hubctl(dataDir, "user", USER);
    const simulator = await startSimulator(simDir);
    simulators.push(simulator);
    const patient = hubctl(dataDir, "patients", "add", "--bed", "Bed 3", "--name", "Siân O'Brien");
    hubctl(dataDir, "--demo", "--systmone", simulator.address, "link", "--patient", String(patient.id), "9990000018");

    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", simulator.address]);
    try {
      let noteId;
      await step(app, "notes-write", async () => {
        await waitState(app, "connected");
        noteId = await writeNote(app, FIRST_LINE);
        assert.match(await app.text("notes-patient-meta"), /NHS number 999 000 0018/);
        // Autosave: type more, and the draft saves itself.
        await (await app.findById("note-editor")).sendKeys(Key.END, Key.ENTER, SECOND_LINE);
        await app.waitFor(async () => /^Saved \d\d:\d\d:\d\d$/.test(await app.text("note-save-state")),
          "the draft never said it was saved");
        const saved = hubctl(dataDir, "notes", "list").find((n) => n.id === noteId);
        assert.equal(saved?.body, `${FIRST_LINE}\n${SECOND_LINE}`, "the autosaved text is in the database");
      });

      await step(app, "notes-preview", async () => {
        const lines = await previewLines(app);
        assert.equal(lines[0], FIRST_LINE, "markup is shown as literal text");
        assert.equal(lines[1], SECOND_LINE);
        assert.match(lines[lines.length - 1], /^Inpatient Hub ref IH-/);
        const injected = await app.driver.executeScript('return document.querySelectorAll("#note-panel b").length');
        assert.equal(injected, 0, "no <b> element was created from the note text");
      });

      await step(app, "notes-approve", async () => {
        await app.click("note-approve");
        await app.waitFor(async () => /Note approved/.test(await app.text("notice")), "no approval notice");
        assert.equal(await app.exists("note-editor"), false, "an approved note is read-only");
        assert.equal(await app.text("note-body"), `${FIRST_LINE}\n${SECOND_LINE}`);
      });

      await step(app, "notes-filed", async () => {
        await app.navigate("outbox");
        // NHS.UK checkboxes draw a styled box over the real input: press its label, as a person would.
        await app.driver.findElement(By.css('label[for="outbox-finished"]')).click();
        await app.waitFor(async () => (await app.findById("outbox-finished")).isSelected(), "the filter never switched on");
        const row = await app.find(`outbox-${noteId}`);
        await app.waitFor(async () => {
          const state = await app.driver.executeScript(
            `const row = document.querySelector('[data-testid="outbox-${noteId}"]'); return row ? row.dataset.state : null;`);
          return state === "filed";
        }, "the outbox never showed the note filed", 30_000);
        assert.ok(row);
        const events = simctl(simDir, "events", "9990000018").filter((e) => e.narrative.includes(FIRST_LINE));
        assert.equal(events.length, 1, `filed exactly once: ${JSON.stringify(events)}`);
        assert.equal(events[0].identical_narrative_count, 1);
        assert.equal(events[0].narrative.split("\n")[0], FIRST_LINE);
        await app.navigate("notes");
        await app.waitFor(async () => (await liveText(app, `note-${noteId}-status`)) === "Filed", "the note list never showed Filed");
      });
    } finally {
      await app.close();
    }
  });

  test("with SystmOne away, the clipboard path files the note by hand and SystmOne never receives it", async () => {
    const dataDir = makeDataDir({ demo: true });
    const simDir = makeDataDir();
    dirs.push(dataDir, simDir);
    hubctl(dataDir, "user", USER);
    hubctl(dataDir, "patients", "add", "--bed", "Bed 5", "--name", "Zoë Smith-Jones", "--nhs", "9990000026");
    const port = await reservePort();
    const text = `Clipboard note ${Date.now()}: <i>seen</i> & settled`;

    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", `127.0.0.1:${port}`]);
    try {
      let noteId;
      await step(app, "clipboard-write", async () => {
        await waitState(app, "not_running");
        noteId = await writeNote(app, text);
        const lines = await previewLines(app);
        assert.equal(lines[0], text);
        assert.equal(await app.exists("note-approve"), false, "no plain approve while SystmOne is away");
        await app.find("note-approve-queue");
      });

      await step(app, "clipboard-approve", async () => {
        await app.click("note-approve-clipboard");
        await app.find("note-clipboard-text");
        assert.equal((await liveText(app, "note-clipboard-text")).split("\n")[0], text);
        assert.equal(await liveText(app, "note-outbox-state"), "Copied for pasting: confirm once pasted into SystmOne");
      });

      await step(app, "clipboard-confirm", async () => {
        await clickFresh(app, "note-confirm-pasted");
        await app.waitFor(async () => (await liveText(app, "note-status")) === "Filed (pasted by hand)",
          "the note never showed as filed by hand");
        assert.match(await liveText(app, "note-filed"), /pasted by a clinician/);
        const entry = hubctl(dataDir, "outbox", "--all").find((e) => e.note_id === noteId);
        assert.equal(entry?.state_kind ?? entry?.state?.state, "filed_manually", JSON.stringify(entry));
      });

      await step(app, "clipboard-never-sent", async () => {
        // SystmOne comes back: the window connects and its worker runs, but has nothing to send.
        const simulator = await startSimulatorOn(simDir, port);
        simulators.push(simulator);
        await waitState(app, "connected", 30_000);
        await sleep(5_000);
        const events = simctl(simDir, "events", "9990000026", "--all").filter((e) => e.narrative.includes("Clipboard note"));
        assert.deepEqual(events, [], "a pasted note must never also be filed by the API");
        assert.equal(simctl(simDir, "log").filter((e) => e.function === "UpdatePatientRecord").length, 0);
      });
    } finally {
      await app.close();
    }
  });

  test("SystmOne coming back while a paste is unconfirmed asks the clinician, and 'not pasted' files it once", async () => {
    const dataDir = makeDataDir({ demo: true });
    const simDir = makeDataDir();
    dirs.push(dataDir, simDir);
    hubctl(dataDir, "user", USER);
    hubctl(dataDir, "patients", "add", "--bed", "Bed 6", "--name", "Seán D'Arcy-MacDonald", "--nhs", "9990000034");
    const port = await reservePort();
    const text = `Unconfirmed paste ${Date.now()}`;

    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", `127.0.0.1:${port}`]);
    try {
      let noteId;
      await step(app, "unconfirmed-approve", async () => {
        await waitState(app, "not_running");
        noteId = await writeNote(app, text);
        await previewLines(app);
        await app.click("note-approve-clipboard");
        await app.find("note-confirm-pasted");
      });

      await step(app, "unconfirmed-question", async () => {
        const simulator = await startSimulatorOn(simDir, port);
        simulators.push(simulator);
        await waitState(app, "connected", 30_000);
        await app.find("note-paste-question", 30_000);
        assert.match(await liveText(app, "note-paste-question"), /Was it pasted\?/);
        assert.equal(simctl(simDir, "events", "9990000034").length, 0, "nothing is filed on a guess");
        await clickFresh(app, "note-pasted-no");
      });

      await step(app, "unconfirmed-filed-once", async () => {
        await app.waitFor(async () => (await liveText(app, `note-${noteId}-status`)) === "Filed",
          "the note was never filed after 'not pasted'", 30_000);
        const events = simctl(simDir, "events", "9990000034").filter((e) => e.narrative.includes(text));
        assert.equal(events.length, 1, `filed exactly once: ${JSON.stringify(events)}`);
      });
    } finally {
      await app.close();
    }
  });
});
