// Task actions end to end: reassign, edit, a stale edit refused without losing what was typed,
// cancel and reopen, filters, the audit trail of all of it, a task added by hubctl reaching the
// open board by itself, and a read-only database.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { userInfo } from "node:os";
import { App, By, hubctl, makeDataDir, removeDataDir, startDriver, step } from "./harness.mjs";

const USER = "Nurse Able";
/**
 * Who audit rows name: the OS account, for the window and hubctl alike (no SystmOne here). hubctl
 * can no longer act as anyone else, so "someone else" is simply another process.
 */
const ACTOR = userInfo().username;

/** A ward with one patient and one open task, made through hubctl (the same core as the window). */
function seedWard(dataDir) {
  hubctl(dataDir, "user", USER);
  const patient = hubctl(dataDir, "patients", "add", "--bed", "Bed 4", "--name", "Mary Seacole");
  const task = hubctl(dataDir, "tasks", "add", "--patient", String(patient.id), "--title", "Obs 4-hourly");
  return { patientId: patient.id, taskId: task.id };
}

async function waitForText(app, testid, expected) {
  await app.waitFor(async () => (await app.exists(testid)) && (await app.text(testid)) === expected,
    `[data-testid="${testid}"] never read "${expected}"`);
}

describe("task actions", () => {
  let driver;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("reassign, edit, stale edit, cancel and reopen are all applied and audited", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const { patientId, taskId: id } = seedWard(dataDir);
    const app = await App.launch(driver, dataDir);
    try {
      await step(app, "reassign", async () => {
        await app.find(`task-${id}`);
        assert.equal(await app.text(`task-${id}-assignee`), "Unassigned");
        await app.click(`task-${id}-reassign`);
        assert.equal(await app.driver.executeScript("return document.activeElement.id"), `edit-${id}-assignee`,
          "Reassign puts the cursor in the assignee box");
        await app.fill(`edit-${id}-assignee`, "Dr Chen");
        await app.click(`task-${id}-save`);
        await waitForText(app, `task-${id}-assignee`, "Dr Chen");
        assert.equal(await app.exists(`task-${id}-editor`), false, "the editor closes after saving");
      });

      await step(app, "stale-edit", async () => {
        await app.click(`task-${id}-edit`);
        await app.fill(`edit-${id}-title`, "Obs hourly");
        await app.fill(`edit-${id}-date`, "2030-01-02");
        await app.fill(`edit-${id}-time`, "08:00");
        // Someone else changes the task while this form is open.
        hubctl(dataDir, "tasks", "edit", String(id), "--title", "Obs 2-hourly");
        await app.click(`task-${id}-save`);
        await app.find("error-summary");
        await app.waitFor(async () => (await app.text("error-summary")).includes(`changed by ${ACTOR}`),
          "a stale edit must be refused with who changed it");
        await waitForText(app, `task-${id}-title`, "Obs 2-hourly");
        assert.equal(await app.value(`edit-${id}-title`), "Obs hourly", "what was typed is kept");
        assert.equal(await app.value(`edit-${id}-date`), "2030-01-02");
        await app.click(`task-${id}-save`);
        await waitForText(app, `task-${id}-title`, "Obs hourly");
        assert.equal(await app.text(`task-${id}-due`), "2 Jan 2030 08:00");
      });

      await step(app, "filters", async () => {
        await app.fill("filter-assignee", "Dr Chen");
        await app.click("filter-apply");
        await app.find(`task-${id}`);
        await app.fill("filter-assignee", "Nobody Here");
        await app.click("filter-apply");
        await app.waitFor(async () => !(await app.exists(`task-${id}`)), "the assignee filter should hide the task");
        assert.equal(await app.exists("board-empty"), true);
        await app.click("filter-clear");
        await app.find(`task-${id}`);
      });

      await step(app, "cancel-and-reopen", async () => {
        await app.click(`task-${id}-cancel`);
        await app.waitFor(async () => !(await app.exists(`task-${id}`)), "a cancelled task leaves the open board");
        await app.select("filter-status", "cancelled");
        const row = await app.find(`task-${id}`);
        assert.equal(await row.getAttribute("data-status"), "cancelled");
        assert.equal(await app.exists(`task-${id}-edit`), false, "a cancelled task cannot be edited until reopened");
        await app.click(`task-${id}-reopen`);
        await app.waitFor(async () => !(await app.exists(`task-${id}`)), "a reopened task leaves the cancelled view");
        await app.select("filter-status", "open");
        assert.equal(await (await app.find(`task-${id}`)).getAttribute("data-status"), "open");
      });

      await step(app, "handover", async () => {
        await app.navigate("handover");
        const row = await app.find(`handover-task-${id}`);
        assert.match(await row.getText(), /Obs hourly/);
        assert.match(await row.getText(), /Dr Chen/);
        assert.match(await app.text("handover-generated"), /1 open task for 1 patient/);
        assert.equal(await (await app.findById("handover-print")).isDisplayed(), true);
      });

      await step(app, "audit", async () => {
        await app.navigate("audit");
        await app.select("audit-entity", "task");
        await app.fill("audit-entity-id", String(id));
        await app.click("audit-apply");
        await app.waitFor(async () => (await app.driver.findElements(By.css("tr[data-action]"))).length === 6,
          "six audit entries for the task");
        const rows = await app.driver.findElements(By.css("tr[data-action]"));
        const seen = [];
        for (const row of rows) {
          const cells = await row.findElements(By.css("td"));
          seen.push([await row.getAttribute("data-action"), await cells[1].getText()]);
        }
        assert.deepEqual(seen, [
          ["task.reopened", ACTOR],
          ["task.cancelled", ACTOR],
          ["task.edited", ACTOR],
          ["task.edited", ACTOR],
          ["task.reassigned", ACTOR],
          ["task.added", ACTOR],
        ]);
        assert.match(await rows[2].getText(), /Obs 2-hourly → Obs hourly/);
      });

      await step(app, "changed-elsewhere", async () => {
        // Another process adds a task: the board shows it without being asked (hub:changed).
        await app.navigate("board");
        await app.find(`task-${id}`);
        await app.driver.executeScript("window.__noReload = true");
        const added = hubctl(dataDir, "tasks", "add", "--patient", String(patientId), "--title", "Fluid balance chart");
        await waitForText(app, `task-${added.id}-title`, "Fluid balance chart");
        assert.equal(await app.driver.executeScript("return window.__noReload === true"), true, "the window was reloaded");
      });
    } finally {
      await app.close();
    }
  });

  test("every control is labelled and every view is reachable from the header", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    seedWard(dataDir);
    const app = await App.launch(driver, dataDir);
    try {
      for (const view of ["board", "handover", "audit", "settings"]) {
        await step(app, `labels-${view}`, async () => {
          await app.navigate(view);
          const unlabelled = await app.driver.executeScript(`
            return [...document.querySelectorAll("input, select, textarea, button")]
              .filter((el) => el.offsetParent !== null)
              .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.textContent.trim())
              .map((el) => el.id || el.outerHTML.slice(0, 80));`);
          assert.deepEqual(unlabelled, [], `unlabelled controls on ${view}`);
          assert.equal(await app.driver.executeScript("return document.title"), {
            board: "Ward board – Inpatient Hub",
            handover: "Handover – Inpatient Hub",
            audit: "Audit – Inpatient Hub",
            settings: "Settings – Inpatient Hub",
          }[view]);
        });
      }
    } finally {
      await app.close();
    }
  });

  test("a read-only database shows a warning and disables every edit control", async (t) => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const { taskId: id } = seedWard(dataDir);
    const database = join(dataDir, "inpatient-hub.sqlite");
    // Root ignores file permissions, so make the file immutable instead (Linux, ext4 and similar).
    const lock = spawnSync("chattr", ["+i", database], { encoding: "utf8" });
    if (lock.error || lock.status !== 0) {
      t.skip(`cannot make the database read-only here (chattr: ${lock.error?.message ?? lock.stderr.trim()})`);
      return;
    }
    try {
      const app = await App.launch(driver, dataDir);
      try {
        await step(app, "read-only", async () => {
          // SQLite may only find out that the file is read-only at the first write: either the
          // window knows from the start (controls disabled) or the first attempt tells it.
          const complete = await app.findById(`task-${id}-complete`);
          if (await complete.isEnabled()) {
            await complete.click();
            await app.find("error-summary");
            await app.waitFor(async () => /read-only/.test(await app.text("error-summary")), "the refusal should say read-only");
          }
          const callout = await app.find("read-only-callout");
          assert.equal(await callout.isDisplayed(), true);
          assert.match(await callout.getText(), /read-only/);
          await app.find(`task-${id}`);
          assert.equal(await app.text(`task-${id}-title`), "Obs 4-hourly", "the board is still readable");
          for (const control of [`task-${id}-complete`, `task-${id}-edit`, "task-submit", "patient-submit", "task-title"]) {
            assert.equal(await (await app.findById(control)).isEnabled(), false, `${control} should be disabled`);
          }
          await app.navigate("audit");
          await app.find("audit-table");
        });
      } finally {
        await app.close();
      }
    } finally {
      spawnSync("chattr", ["-i", database]);
    }
  });
});
