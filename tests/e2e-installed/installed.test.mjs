// The app as a ward PC has it: the window and hubctl the .deb put in /usr/bin, driven through
// WebDriver. scripts/test-installed.sh builds and installs the package, then runs this file twice
// on one data folder it keeps: phase "install" (start, add a task in the window, restart, the task
// is still there and audited) and, after installing a newer package over it, phase "upgrade" (the
// same ward's data opens in the upgraded window, task and audit chain intact).
//
// Not part of `node --test tests/e2e/` (which runs the debug build): it needs the installed
// package. Inputs (set by the script):
//   INPATIENT_HUB_APP / INPATIENT_HUB_HUBCTL   the installed binaries (the harness uses them)
//   INPATIENT_HUB_INSTALLED_DATA_DIR           the ward's data folder, kept across phases
//   INPATIENT_HUB_INSTALLED_PHASE              "install" or "upgrade"
//   INPATIENT_HUB_DB_KEY                       the database key (no keychain needed)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import { App, appBinary, hubctl, hubctlBinary, startDriver, step } from "../e2e/harness.mjs";

const TITLE = "Obs 4-hourly (installed smoke test)";
const ACTOR = userInfo().username;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through scripts/test-installed.sh`);
  return value;
}

const dataDir = required("INPATIENT_HUB_INSTALLED_DATA_DIR");
const phase = required("INPATIENT_HUB_INSTALLED_PHASE");
if (!["install", "upgrade"].includes(phase)) throw new Error(`unknown INPATIENT_HUB_INSTALLED_PHASE ${phase}`);

/** The smoke test's task as hubctl reads it from the database (never from the window). */
function storedTask() {
  const tasks = hubctl(dataDir, "tasks", "list").filter((t) => t.title === TITLE);
  assert.ok(tasks.length <= 1, `one task titled ${TITLE}, found ${tasks.length}`);
  return tasks[0];
}

/** The task is on the board the window shows. */
async function boardShows(app, taskId) {
  await app.waitFor(
    async () => (await app.exists(`task-${taskId}`)) && (await app.text(`task-${taskId}`)).includes(TITLE),
    `task ${taskId} (${TITLE}) is not on the board`,
  );
}

/** The task's audit row names the OS account, and the whole audit chain still verifies. */
function assertAudited(taskId) {
  const rows = hubctl(dataDir, "audit", "--entity", "task", "--id", String(taskId));
  const added = rows.filter((r) => r.action === "task.added");
  assert.equal(added.length, 1, `one task.added row for task ${taskId}: ${JSON.stringify(rows)}`);
  assert.equal(added[0].actor, ACTOR);
  assert.equal(added[0].detail.title, TITLE);
  hubctl(dataDir, "audit", "verify");
}

describe(`the installed app (${phase})`, () => {
  let driver;

  before(async () => {
    for (const binary of [appBinary(), hubctlBinary()]) {
      assert.ok(binary.startsWith("/usr/bin/"), `${binary}: this test runs the installed binaries only`);
      assert.ok(existsSync(binary), `${binary} is not installed`);
    }
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
  });

  if (phase === "install") {
    test("start, add a task in the window, restart: it is still there and audited", async () => {
      assert.equal(storedTask(), undefined, "the data folder starts without the smoke test's task");
      const patient = hubctl(dataDir, "patients", "add", "--bed", "Bed 12", "--name", "Florence Nightingale");

      let app = await App.launch(driver, dataDir);
      let taskId;
      try {
        await step(app, "installed-add-task", async () => {
          await app.select("task-patient", String(patient.id));
          await app.fill("task-title", TITLE);
          await app.click("task-submit");
          await app.waitFor(async () => storedTask() !== undefined, "the window never stored the task");
          taskId = storedTask().id;
          await boardShows(app, taskId);
        });
      } finally {
        await app.close();
      }

      app = await App.launch(driver, dataDir);
      try {
        await step(app, "installed-after-restart", async () => {
          await boardShows(app, taskId);
          assert.equal(storedTask().status, "open");
          assertAudited(taskId);
        });
      } finally {
        await app.close();
      }
    });
  } else {
    test("after an upgrade the ward's data opens in the new window, task and audit intact", async () => {
      const task = storedTask();
      assert.ok(task, "the task added before the upgrade is still stored");
      assertAudited(task.id);
      const app = await App.launch(driver, dataDir);
      try {
        await step(app, "installed-after-upgrade", () => boardShows(app, task.id));
      } finally {
        await app.close();
      }
    });
  }
});
