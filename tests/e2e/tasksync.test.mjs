// Ward task ↔ SystmOne task sync end to end, through the real window and the bundled
// SystmOne simulator (demo mode): a ward task is created in SystmOne exactly once, shows
// "In SystmOne", and when a SystmOne user completes it the board shows it done by itself.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
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

function simTasks(dataDir, simDir) {
  return hubctl(dataDir, "simctl", "--sim-dir", simDir, "tasks", NHS);
}

async function rowAttribute(app, taskId, name) {
  const rows = await app.driver.findElements(By.css(`tr[data-task-id="${taskId}"]`));
  return rows.length ? rows[0].getAttribute(name) : null;
}

/** The ids of the task rows whose title is `title`. */
async function taskIdsTitled(app, title) {
  const ids = [];
  for (const row of await app.driver.findElements(By.css("tr[data-task-id]"))) {
    const span = await row.findElements(By.css('[data-testid$="-title"]'));
    if (span.length && (await span[0].getText()) === title) ids.push(Number(await row.getAttribute("data-task-id")));
  }
  return ids;
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
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    hubctl(dataDir, "user", USER);
    const patient = hubctl(dataDir, "patients", "add", "--bed", "Bed 1", "--name", "Zoë Smith-Jones", "--nhs", NHS);
    const title = `Chase CT head report ${Date.now().toString(36)}`;

    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", simulator.address]);
    try {
      let taskId;
      await step(app, "add-task", async () => {
        await app.find(`patient-${patient.id}`);
        await app.select("task-patient", String(patient.id));
        await app.fill("task-title", title);
        await app.click("task-submit");
        await app.waitFor(async () => (await taskIdsTitled(app, title)).length === 1, "the new task never appeared on the board");
        [taskId] = await taskIdsTitled(app, title);
        assert.equal(await rowAttribute(app, taskId, "data-sync-state"), "local");
        assert.equal(await app.text(`task-${taskId}-sync`), "Local only");
        assert.equal(await app.text(`task-${taskId}-push`), "Create in SystmOne");
        assert.equal(await app.value(`task-${taskId}-push-type`), "Clinical Review Required");
      });

      await step(app, "create-in-systmone", async () => {
        await app.click(`task-${taskId}-push`);
        await app.waitFor(async () => (await rowAttribute(app, taskId, "data-sync-state")) !== "local",
          "Create in SystmOne did not change the task's sync state");
        assert.equal(await app.exists(`task-${taskId}-push`), false, "a task on its way to SystmOne is not offered again");
        // Sent by the window's own background sync, with no further action here.
        await app.waitFor(async () => (await rowAttribute(app, taskId, "data-sync-state")) === "linked",
          "the task never showed as in SystmOne", SEND_TIMEOUT_MS);
        assert.equal(await app.text(`task-${taskId}-sync`), "In SystmOne");
      });

      let uid;
      await step(app, "filed-exactly-once", async () => {
        const copies = simTasks(dataDir, simDir).filter((t) => t.content.includes(title));
        assert.equal(copies.length, 1, `SystmOne should hold the task exactly once: ${JSON.stringify(copies)}`);
        const [filed] = copies;
        uid = filed.uid;
        assert.equal(filed.task_type, "Clinical Review Required");
        assert.notEqual(filed.status.toLowerCase(), "completed");
        assert.equal((await rowAttribute(app, taskId, "data-task-uid"))?.toLowerCase(), uid.toLowerCase());
      });

      await step(app, "completed-in-systmone", async () => {
        // Show done tasks too, so the row stays in view when the sync marks it done.
        await app.select("filter-status", "all");
        await app.waitFor(async () => (await app.value("filter-status")) === "all", "the status filter did not change");
        await app.find(`task-${taskId}`);
        // A marker that a page reload would wipe: the change must arrive without one.
        await app.driver.executeScript("window.__noReload = true");
        hubctl(dataDir, "simctl", "--sim-dir", simDir, "complete-task", uid);
        const started = Date.now();
        await app.waitFor(async () => (await rowAttribute(app, taskId, "data-status")) === "done",
          "the board never showed the task completed in SystmOne as done", COMPLETION_TIMEOUT_MS);
        console.log(`# completion reached the board after ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.equal(await app.driver.executeScript("return window.__noReload === true"), true, "the window was reloaded");
        assert.equal(await app.text(`task-${taskId}-status`), "Done");
        assert.equal(await rowAttribute(app, taskId, "data-sync-state"), "detached");
        assert.equal(await app.text(`task-${taskId}-sync`), "Unlinked — review");
        const notice = await app.find(`task-${taskId}-sync-notice`);
        assert.equal(await notice.isDisplayed(), true);
        assert.match(await notice.getText(), /Completed or removed in SystmOne; marked done here\./);
        // Still exactly one SystmOne copy, now completed.
        const copies = simTasks(dataDir, simDir).filter((t) => t.content.includes(title));
        assert.equal(copies.length, 1);
        assert.equal(copies[0].status.toLowerCase(), "completed");
      });

      await step(app, "confirmed-time", async () => {
        const id = `patient-${patient.id}-confirmed`;
        await app.waitFor(async () => (await (await app.find(id)).getAttribute("data-stale")) === "false",
          "the patient's tasks were never confirmed against SystmOne", 60_000);
        const line = await app.text(id);
        assert.match(line, /^Tasks last confirmed against SystmOne: today \d\d:\d\d \((just now|\d+ min ago)\)/);
        assert.doesNotMatch(line, /never|Out of date/);
        assert.match(line, /Tasks entered today last checked today \d\d:\d\d\./);
      });

      await step(app, "notice-of-a-task-the-filter-hides", async () => {
        // Back to open tasks only: the done task leaves the table, but what the sync did to it
        // must stay in view until someone dismisses it.
        await app.select("filter-status", "open");
        await app.waitFor(async () => !(await app.exists(`task-${taskId}`)), "the done task should leave the Open view");
        const hidden = await app.find(`task-${taskId}-hidden-notice`);
        assert.equal(await hidden.isDisplayed(), true);
        assert.match(await hidden.getText(), new RegExp(`${title} \\(done\\)`));
        assert.match(await hidden.getText(), /Completed or removed in SystmOne; marked done here\./);
        await app.click(`task-${taskId}-dismiss-notice`);
        await app.waitFor(async () => !(await app.exists(`task-${taskId}-hidden-notice`)), "the notice did not go when dismissed");
      });

      await step(app, "paced", async () => {
        const { throttle_violations: violations } = hubctl(dataDir, "simctl", "--sim-dir", simDir, "violations");
        assert.equal(violations, 0, "the window broke SystmOne's request limits");
      });
    } finally {
      await app.close();
    }
  });
});
