// Ward task ↔ SystmOne task sync end to end, through the real window and the bundled
// SystmOne simulator (demo mode): a ward task is created in SystmOne exactly once, shows
// "In SystmOne", and when a SystmOne user completes it the board shows it done by itself.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { App, By, hubctl, makeDataDir, removeDataDir, startDriver, startSimulator, step } from "./harness.mjs";

const USER = "Nurse Able";
const NHS = "9990000026";
/** The window's background sync sends a create within seconds (SystmOne is paced at 1 request/s). */
const SEND_TIMEOUT_MS = 45_000;
/**
 * A completion in SystmOne reaches the board at the next pull that covers the task: an
 * entered-today pull (every 30 s per patient) once a pull has recorded SystmOne's entry date,
 * or the full pull (one per 30 s per PC, rotating over linked patients).
 */
const COMPLETION_TIMEOUT_MS = 120_000;

/** `hubctl simctl` on the simulator that `startSimulator(simDir)` runs (its data is in simDir/simulator). */
function simctl(simDir, ...args) {
  return hubctl(simDir, "simctl", "--sim-dir", join(simDir, "simulator"), ...args);
}

// The board redraws itself when the sync changes something, so an element found a moment ago
// may already be replaced: read and click in one step, in the page, instead.

async function rowAttribute(app, taskId, name) {
  return app.driver.executeScript(
    "const row = document.querySelector(`tr[data-task-id=\"${arguments[0]}\"]`); return row ? row.getAttribute(arguments[1]) : null;",
    String(taskId),
    name,
  );
}

/** The visible text of `[data-testid=testid]`, or null when there is none. */
async function textOf(app, testid) {
  return app.driver.executeScript(
    "const el = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); return el ? el.innerText.trim() : null;",
    testid,
  );
}

/** Clicks `#id` through WebDriver (real pointer events), again if a redraw replaced it mid-way. */
async function clickFresh(app, id) {
  for (let attempt = 0; ; attempt++) {
    try {
      await app.click(id);
      return;
    } catch (error) {
      if (error.name !== "StaleElementReferenceError" || attempt >= 4) throw error;
    }
  }
}

/** Chooses an option of `#id`, again if a redraw replaced the options mid-way. */
async function selectFresh(app, id, value) {
  for (let attempt = 0; ; attempt++) {
    try {
      await app.select(id, value);
      return;
    } catch (error) {
      if (error.name !== "StaleElementReferenceError" || attempt >= 4) throw error;
    }
  }
}

async function valueOf(app, id) {
  return app.driver.executeScript("return document.getElementById(arguments[0])?.value ?? null;", id);
}

/** The ids of the task rows whose title is `title`. */
async function taskIdsTitled(app, title) {
  return app.driver.executeScript(
    "return [...document.querySelectorAll('tr[data-task-id]')]" +
      ".filter((row) => row.querySelector('[data-testid$=\"-title\"]')?.textContent === arguments[0])" +
      ".map((row) => Number(row.dataset.taskId));",
    title,
  );
}

describe("SystmOne task sync", () => {
  let driver;
  let simulator;
  let simDir;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
    simDir = makeDataDir();
    simulator = await startSimulator(simDir);
  });

  after(async () => {
    await driver?.stop();
    await simulator?.stop();
    if (simDir) removeDataDir(simDir);
    for (const dir of dirs) removeDataDir(dir);
  });

  test("a ward task is created in SystmOne once, and its completion there reaches the board", async () => {
    const dataDir = makeDataDir({ demo: true });
    dirs.push(dataDir);
    hubctl(dataDir, "user", USER);
    const patient = hubctl(dataDir, "patients", "add", "--bed", "Bed 1", "--name", "Zoë Smith-Jones", "--nhs", NHS);
    const title = `Chase CT head report ${Date.now().toString(36)}`;

    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", simulator.address]);
    try {
      let taskId;
      await step(app, "add-task", async () => {
        await app.find(`patient-${patient.id}`);
        await selectFresh(app, "task-patient", String(patient.id));
        await app.fill("task-title", title);
        await clickFresh(app, "task-submit");
        await app.waitFor(async () => (await taskIdsTitled(app, title)).length === 1, "the new task never appeared on the board");
        [taskId] = await taskIdsTitled(app, title);
        assert.equal(await rowAttribute(app, taskId, "data-sync-state"), "local");
        assert.equal(await textOf(app, `task-${taskId}-sync`), "Local only");
        assert.equal(await textOf(app, `task-${taskId}-push`), "Create in SystmOne");
        assert.equal(await valueOf(app, `task-${taskId}-push-type`), "Clinical Review Required");
      });

      await step(app, "create-in-systmone", async () => {
        // Not the default type, to show the choice reaches SystmOne.
        await selectFresh(app, `task-${taskId}-push-type`, "Clinical Approval");
        await clickFresh(app, `task-${taskId}-push`);
        await app.waitFor(async () => (await rowAttribute(app, taskId, "data-sync-state")) !== "local",
          "Create in SystmOne did not change the task's sync state");
        assert.equal(await app.exists(`task-${taskId}-push`), false, "a task on its way to SystmOne is not offered again");
        // Sent by the window's own background sync, with no further action here.
        await app.waitFor(async () => (await rowAttribute(app, taskId, "data-sync-state")) === "linked",
          "the task never showed as in SystmOne", SEND_TIMEOUT_MS);
        assert.equal(await textOf(app, `task-${taskId}-sync`), "In SystmOne");
      });

      let uid;
      await step(app, "filed-exactly-once", async () => {
        const copies = simctl(simDir, "tasks", NHS).filter((t) => t.content.includes(title));
        assert.equal(copies.length, 1, `SystmOne should hold the task exactly once: ${JSON.stringify(copies)}`);
        const [filed] = copies;
        uid = filed.uid;
        assert.equal(filed.task_type, "Clinical Approval");
        assert.notEqual(filed.status.toLowerCase(), "completed");
        assert.equal((await rowAttribute(app, taskId, "data-task-uid"))?.toLowerCase(), uid.toLowerCase());
      });

      await step(app, "completed-in-systmone", async () => {
        // Show done tasks too, so the row stays in view when the sync marks it done.
        await selectFresh(app, "filter-status", "all");
        await app.waitFor(async () => (await valueOf(app, "filter-status")) === "all", "the status filter did not change");
        await app.find(`task-${taskId}`);
        // A marker that a page reload would wipe: the change must arrive without one.
        await app.driver.executeScript("window.__noReload = true");
        simctl(simDir, "complete-task", uid);
        const started = Date.now();
        await app.waitFor(async () => (await rowAttribute(app, taskId, "data-status")) === "done",
          "the board never showed the task completed in SystmOne as done", COMPLETION_TIMEOUT_MS);
        console.log(`# completion reached the board after ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.equal(await app.driver.executeScript("return window.__noReload === true"), true, "the window was reloaded");
        assert.equal(await textOf(app, `task-${taskId}-status`), "Done");
        assert.equal(await rowAttribute(app, taskId, "data-sync-state"), "detached");
        assert.equal(await textOf(app, `task-${taskId}-sync`), "Unlinked — review");
        assert.match(await textOf(app, `task-${taskId}-sync-notice`), /Completed or removed in SystmOne; marked done here\./);
        // Still exactly one SystmOne copy, now completed.
        const copies = simctl(simDir, "tasks", NHS).filter((t) => t.content.includes(title));
        assert.equal(copies.length, 1);
        assert.equal(copies[0].status.toLowerCase(), "completed");
      });

      await step(app, "confirmed-time", async () => {
        const id = `patient-${patient.id}-confirmed`;
        await app.waitFor(async () => (await app.driver.executeScript(
          "return document.querySelector(`[data-testid=\"${arguments[0]}\"]`)?.dataset.stale", id)) === "false",
          "the patient's tasks were never confirmed against SystmOne", 60_000);
        const line = await textOf(app, id);
        assert.match(line, /^Tasks last confirmed against SystmOne: today \d\d:\d\d \((just now|\d+ min ago)\)\. /);
        assert.doesNotMatch(line, /never|Out of date/);
        assert.match(line, /Tasks entered today last checked today \d\d:\d\d\./);
      });

      await step(app, "notice-of-a-task-the-filter-hides", async () => {
        // Back to open tasks only: the done task leaves the table, but what the sync did to it
        // must stay in view until someone dismisses it.
        await selectFresh(app, "filter-status", "open");
        await app.waitFor(async () => !(await app.exists(`task-${taskId}`)), "the done task should leave the Open view");
        await app.find(`task-${taskId}-hidden-notice`);
        const hidden = await textOf(app, `task-${taskId}-hidden-notice`);
        assert.match(hidden, new RegExp(`${title} \\(done\\)`));
        assert.match(hidden, /Completed or removed in SystmOne; marked done here\./);
        await clickFresh(app, `task-${taskId}-dismiss-notice`);
        await app.waitFor(async () => !(await app.exists(`task-${taskId}-hidden-notice`)), "the notice did not go when dismissed");
      });

      await step(app, "paced", async () => {
        const { throttle_violations: violations } = simctl(simDir, "violations");
        assert.equal(violations, 0, "the window broke SystmOne's request limits");
      });
    } finally {
      await app.close();
    }
  });
});
