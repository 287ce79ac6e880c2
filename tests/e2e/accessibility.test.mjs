// Accessibility checked by a tool (issue 13): axe-core (pinned in package.json) on every view
// with zero serious or critical violations, and a keyboard-only walk: every control of every view
// is reached with Tab, views open with Enter, and a patient and a task are added and the task
// completed without the mouse.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { App, assertAccessible, hubctl, makeDataDir, removeDataDir, startDriver, step } from "./harness.mjs";

const VIEWS = ["board", "handover", "audit", "settings", "lookup", "notes", "outbox"];
const TAB = "\uE004";
const ENTER = "\uE007";
const SPACE = "\uE00D";

async function press(app, ...keys) {
  const actions = app.driver.actions({ async: true });
  for (const key of keys) actions.sendKeys(key);
  await actions.perform();
}

async function activeId(app) {
  return app.driver.executeScript("return document.activeElement ? document.activeElement.id : ''");
}

/** Presses Tab until the element `id` has the focus (at most `limit` times). */
async function tabTo(app, id, limit = 200) {
  for (let i = 0; i < limit; i++) {
    if ((await activeId(app)) === id) return;
    await press(app, TAB);
  }
  throw new Error(`Tab never reached #${id}`);
}

/**
 * The controls of the view on screen a person can use: visible, enabled buttons, links, inputs,
 * lists and summaries. Each is named by id, or by its text when it has none.
 */
const CONTROLS_SCRIPT = `
  const view = document.querySelector("section.app-view:not([hidden])");
  const name = (el) => el.id || (el.tagName + ":" + (el.getAttribute("aria-label") || el.textContent.trim()).slice(0, 60));
  const usable = (el) => !el.disabled && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden"
    && !el.closest("[inert]") && el.getAttribute("tabindex") !== "-1";
  return [...view.querySelectorAll("a[href], button, input, select, textarea, summary")].filter(usable).map(name);`;

/**
 * Walks the view with Tab from its heading until the focus leaves the view, recording every
 * control focused on the way, and checks that the focus is always shown (the NHS.UK focus style:
 * an outline, a box shadow or a background that changes).
 */
async function tabWalk(app) {
  const reached = new Set();
  for (let i = 0; i < 400; i++) {
    await press(app, TAB);
    const info = await app.driver.executeScript(`
      const el = document.activeElement;
      const view = document.querySelector("section.app-view:not([hidden])");
      if (!el || !view.contains(el)) return null;
      const s = getComputedStyle(el);
      const shown = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none"
        || s.backgroundColor === "rgb(255, 235, 59)";
      const name = el.id || (el.tagName + ":" + (el.getAttribute("aria-label") || el.textContent.trim()).slice(0, 60));
      return { name, shown };`);
    if (!info) return reached;
    assert.ok(info.shown, `the keyboard focus on ${info.name} is not visible`);
    reached.add(info.name);
  }
  throw new Error("Tab never left the view (a keyboard trap?)");
}

describe("accessibility", () => {
  let driver;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("axe-core finds no serious or critical violation on any view", async () => {
    const dataDir = makeDataDir({ demo: true });
    dirs.push(dataDir);
    const ada = hubctl(dataDir, "patients", "add", "--bed", "Bed 1", "--name", "Ada Lovelace");
    hubctl(dataDir, "patients", "add", "--bed", "Bed 2", "--name", "Mary Seacole");
    hubctl(dataDir, "tasks", "add", "--patient", String(ada.id), "--title", "Bloods", "--due", "2020-01-01 08:00");
    hubctl(dataDir, "tasks", "add", "--patient", String(ada.id), "--title", "Obs 4-hourly");
    const app = await App.launch(driver, dataDir, ["--demo"]);
    try {
      for (const view of VIEWS) {
        await step(app, `axe-${view}`, async () => {
          await app.navigate(view);
          await assertAccessible(app, `the ${view} view`);
        });
      }
      await step(app, "axe-board-details-open", async () => {
        await app.navigate("board");
        await app.driver.executeScript("document.getElementById('shortcuts').open = true");
        await assertAccessible(app, "the board with the keyboard shortcuts open");
      });
    } finally {
      await app.close();
    }
  });

  test("a keyboard-only walk reaches every control of every view and does the board's work", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const ada = hubctl(dataDir, "patients", "add", "--bed", "Bed 1", "--name", "Ada Lovelace");
    hubctl(dataDir, "tasks", "add", "--patient", String(ada.id), "--title", "Obs 4-hourly");
    const app = await App.launch(driver, dataDir);
    try {
      await step(app, "keyboard-skip-link", async () => {
        await app.driver.executeScript("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);");
        await press(app, TAB);
        assert.equal(await activeId(app), "skip-link", "the first Tab reaches Skip to main content");
        await press(app, ENTER);
        assert.equal(await activeId(app), "maincontent");
      });

      for (const view of VIEWS) {
        await step(app, `keyboard-${view}`, async () => {
          await app.driver.executeScript("document.getElementById('skip-link').focus()");
          await tabTo(app, `nav-${view}`);
          await press(app, ENTER);
          await app.waitFor(async () => (await activeId(app)) === `${view}-title`, `Enter on the menu did not open ${view}`);
          const controls = await app.driver.executeScript(CONTROLS_SCRIPT);
          assert.ok(controls.length > 0, `the ${view} view has controls to reach`);
          const reached = await tabWalk(app);
          if (view === "board") {
            for (const id of ["find-patient", `overview-${ada.id}-open`, "filter-apply", "task-submit", "patient-submit"]) {
              assert.ok(reached.has(id), `Tab reaches #${id}`);
            }
          }
          const missed = controls.filter((c) => !reached.has(c));
          assert.deepEqual(missed, [], `Tab never reached these controls of the ${view} view`);
        });
      }

      await step(app, "keyboard-add-patient", async () => {
        await app.driver.executeScript("document.getElementById('skip-link').focus()");
        await tabTo(app, "nav-board");
        await press(app, ENTER);
        await app.waitFor(async () => (await activeId(app)) === "board-title", "the board did not open");
        await tabTo(app, "patient-bed");
        await press(app, "Bed 7", TAB);
        assert.equal(await activeId(app), "patient-name");
        await press(app, "Grace Hopper");
        await tabTo(app, "patient-submit");
        await press(app, SPACE);
        await app.waitFor(async () => (await app.text("notice")).includes("Patient added: Bed 7"), "Space on Add patient did nothing");
      });

      await step(app, "keyboard-add-task", async () => {
        // The keyboard is back in the bed box: shortcuts are text there, so move to a button first.
        await tabTo(app, "patient-submit");
        await press(app, "n");
        assert.equal(await activeId(app), "task-title", "N opens the new task");
        await press(app, "Chase echo report", ENTER);
        await app.waitFor(async () => (await app.text("notice")).includes("Task added"), "Enter in the task form did not add it");
      });

      await step(app, "keyboard-complete-task", async () => {
        const taskId = await app.driver.executeScript(`
          const row = [...document.querySelectorAll("tr[data-task-id]")].find((r) => r.textContent.includes("Obs 4-hourly"));
          return row ? Number(row.dataset.taskId) : null;`);
        assert.ok(taskId);
        await tabTo(app, `task-${taskId}-complete`);
        await press(app, ENTER);
        await app.waitFor(async () => !(await app.exists(`task-${taskId}`)), "Enter on Complete did not complete the task");
      });
    } finally {
      await app.close();
    }
  });
});
