// The ward board end to end, through the real window: a task's whole life, persistence
// across a restart, the audit trail, and refusal of bad input.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import { App, By, makeDataDir, removeDataDir, startDriver, step } from "./harness.mjs";

/** A display label only: it is shown, never who acts. */
const USER = "Nurse Able";

/** Who audit rows name when SystmOne is not connected: the OS account the window and hubctl run as. */
const ACTOR = userInfo().username;
const PATIENT_NAME = "Ada <script>window.pwned=1</script> Lovelace";

function tomorrow() {
  const d = new Date(Date.now() + 24 * 3600 * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Sets the display label; who acts stays the OS account (no SystmOne here). */
async function chooseUser(app, name) {
  await app.navigate("settings");
  await app.fill("user-name", name);
  await app.click("user-submit");
  await app.waitFor(async () => (await app.text("acting-identity")).includes(`label: ${name}`), `the status strip never showed the label ${name}`);
  assert.equal(await app.text("current-user"), ACTOR, "a label never changes who acts");
}

/** Adds a patient through the form and returns its id. */
async function addPatient(app, bed, name, nhs = "") {
  await app.fill("patient-bed", bed);
  await app.fill("patient-name", name);
  await app.fill("patient-nhs", nhs);
  await app.click("patient-submit");
  const heading = await app.driver.wait(
    async () => {
      for (const el of await app.driver.findElements(By.css("section[data-patient-id] h2"))) {
        if ((await el.getText()) === `${bed}: ${name}`) return el;
      }
      return false;
    },
    10_000,
    `patient ${bed} never appeared on the board`,
  );
  const section = await heading.findElement(By.xpath("./ancestor::section[1]"));
  return Number(await section.getAttribute("data-patient-id"));
}

/** The ids of the task rows on the board whose title is `title`. */
async function taskIdsTitled(app, title) {
  const ids = [];
  for (const row of await app.driver.findElements(By.css("tr[data-task-id]"))) {
    const cell = await row.findElement(By.css("td"));
    if ((await cell.getText()) === title) ids.push(Number(await row.getAttribute("data-task-id")));
  }
  return ids;
}

async function auditRows(app) {
  const rows = [];
  for (const row of await app.driver.findElements(By.css("tr[data-action]"))) {
    const cells = await row.findElements(By.css("td"));
    rows.push({
      action: await row.getAttribute("data-action"),
      entity: await row.getAttribute("data-entity"),
      entityId: await row.getAttribute("data-entity-id"),
      who: await cells[1].getText(),
    });
  }
  return rows;
}

describe("ward board", () => {
  let driver;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("a task is added, completed, survives a restart, and is audited", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const title = "Bloods: U&Es and FBC <b>urgent</b>";
    let taskId;
    let patientId;

    let app = await App.launch(driver, dataDir);
    try {
      await step(app, "first-run-opens-board", async () => {
        assert.equal(await app.driver.executeScript("return location.hash || ''"), "");
        assert.equal(await (await app.findById("view-board")).isDisplayed(), true, "who acts comes from the OS: nothing to choose first");
        assert.equal(await app.text("current-user"), ACTOR);
      });
      await step(app, "choose-user", () => chooseUser(app, USER));
      await step(app, "add-patient", async () => {
        await app.navigate("board");
        patientId = await addPatient(app, "Bay 1 Bed 3", PATIENT_NAME, "943 476 5919");
        assert.equal(await app.driver.executeScript("return window.pwned === undefined"), true, "markup in a name must not run");
        assert.equal(await app.value("task-patient"), String(patientId), "the new patient is preselected for the next task");
      });
      await step(app, "add-task", async () => {
        await app.fill("task-title", title);
        await app.fill("task-assignee", "Dr Baker");
        await app.fill("task-due-date", tomorrow());
        await app.fill("task-due-time", "09:00");
        await app.click("task-submit");
        await app.waitFor(async () => (await taskIdsTitled(app, title)).length === 1, "the new task never appeared on the board");
        [taskId] = await taskIdsTitled(app, title);
        assert.equal(await app.text(`task-${taskId}-assignee`), "Dr Baker");
        assert.equal(await app.text(`task-${taskId}-due`), "Tomorrow 09:00");
        assert.equal(await app.text(`task-${taskId}-status`), "Open");
        assert.equal(await app.value("task-title"), "", "the form is cleared after a successful add");
        assert.equal(await app.exists("error-summary") && (await (await app.find("error-summary")).isDisplayed()), false);
      });
      await step(app, "complete-task", async () => {
        await app.click(`task-${taskId}-complete`);
        await app.waitFor(async () => !(await app.exists(`task-${taskId}`)), "a completed task should leave the open board");
        assert.match(await app.text("notice"), /Task completed/);
      });
    } finally {
      await app.close();
    }

    app = await App.launch(driver, dataDir);
    try {
      await step(app, "after-restart-board", async () => {
        assert.equal(await app.text("current-user"), ACTOR, "changes are recorded under the OS account");
        assert.match(await app.text("acting-identity"), /label: Nurse Able/, "the display label is remembered");
        assert.equal(await (await app.findById("view-board")).isDisplayed(), true, "the app opens the board");
        assert.equal(await app.exists(`task-${taskId}`), false, "the done task is not among open tasks");
        await app.select("filter-status", "done");
        const row = await app.find(`task-${taskId}`);
        assert.equal(await row.getAttribute("data-status"), "done");
        assert.equal(await app.text(`task-${taskId}-status`), "Done");
        assert.equal(await app.text(`task-${taskId}-title`), title);
        assert.equal(await app.exists(`task-${taskId}-reopen`), true, "a done task can be reopened");
      });
      await step(app, "after-restart-audit", async () => {
        await app.navigate("audit");
        await app.find("audit-table");
        const rows = await auditRows(app);
        const forTask = rows.filter((r) => r.entity === "task" && r.entityId === String(taskId));
        assert.deepEqual(forTask.map((r) => r.action), ["task.completed", "task.added"], "newest first");
        for (const r of forTask) assert.equal(r.who, ACTOR, "the audit names the OS account, never the label");
        assert.ok(rows.some((r) => r.action === "patient.added" && r.entityId === String(patientId)));
      });
    } finally {
      await app.close();
    }
  });

  test("bad input shows the backend's message, keeps the form, and adds nothing", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const app = await App.launch(driver, dataDir);
    try {
      await step(app, "setup", async () => {
        await chooseUser(app, USER);
        await app.navigate("board");
      });
      const patientId = await step(app, "add-patient", () => addPatient(app, "Bed 7", "Grace Hopper"));

      await step(app, "empty-title", async () => {
        await app.fill("task-title", "   ");
        await app.fill("task-assignee", "Dr Keep");
        await app.click("task-submit");
        const summary = await app.find("error-summary");
        await app.waitFor(() => summary.isDisplayed(), "the error summary never showed");
        assert.match(await summary.getText(), /The task title must not be empty/);
        assert.match(await app.text("task-title-error"), /The task title must not be empty/);
        assert.equal(await app.value("task-assignee"), "Dr Keep", "nothing typed is lost on error");
        assert.equal(await app.driver.executeScript("return document.activeElement.id"), "error-summary", "focus moves to the summary");
        assert.equal(await app.exists(`patient-${patientId}-no-tasks`), true, "no task was added");
      });

      await step(app, "error-link-focuses-field", async () => {
        await (await app.find("error-summary")).findElement(By.css("a")).click();
        assert.equal(await app.driver.executeScript("return document.activeElement.id"), "task-title");
      });

      await step(app, "bad-nhs-number", async () => {
        await app.fill("patient-bed", "Bed 8");
        await app.fill("patient-name", "Alan Turing");
        await app.fill("patient-nhs", "123 456 7890");
        await app.click("patient-submit");
        await app.find("patient-nhs-error");
        assert.match(await app.text("patient-nhs-error"), /NHS number/);
        assert.equal(await app.value("patient-name"), "Alan Turing");
        assert.equal(await app.exists("task-title-error"), false, "old errors are cleared");
      });

      await step(app, "correct-and-retry", async () => {
        await app.fill("task-title", "Chase echo report");
        await app.click("task-submit");
        await app.waitFor(async () => (await taskIdsTitled(app, "Chase echo report")).length === 1, "the corrected task was not added");
        assert.equal((await app.driver.findElements(By.css("tr[data-task-id]"))).length, 1, "exactly one task exists");
        assert.equal(await (await app.find("error-summary")).isDisplayed(), false, "the summary clears on success");
      });

      await step(app, "audit-has-no-failed-adds", async () => {
        await app.navigate("audit");
        await app.find("audit-table");
        const added = (await auditRows(app)).filter((r) => r.action === "task.added");
        assert.equal(added.length, 1);
      });
    } finally {
      await app.close();
    }
  });
});
