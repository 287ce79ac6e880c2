// Ward settings and note templates end to end: the settings form is drawn from the backend's
// descriptors (`ward-${setting}` inputs); with no SystmOne (so no verified role) a change that makes
// the ward safer is saved and a loosening one is refused with the reason; co-signature switched on
// makes a note approved without a verified role wait for a co-signature (there is no role setting:
// roles come from SystmOne); a setting changed by hubctl shows in the open form
// by itself; a template added in the window is offered in Case notes, edited with a conflict shown
// (never overwritten), and retired.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Key } from "selenium-webdriver";
import { App, By, hubctl, makeDataDir, removeDataDir, reservePort, startDriver, step } from "./harness.mjs";

const USER = "Nurse Able";

/** The text of `[data-testid=id]` read in one go (the notes view redraws as the backend reports changes), or null. */
async function liveText(app, id) {
  return app.driver.executeScript(`const el = document.querySelector('[data-testid="${id}"]'); return el ? el.textContent : null;`);
}

/** Ticks a checkbox by pressing its label, as a person would (NHS.UK draws a styled box over the input). */
async function tick(app, id) {
  await app.findById(id);
  await app.driver.findElement(By.css(`label[for="${id}"]`)).click();
  await app.waitFor(async () => (await app.findById(id)).isSelected(), `#${id} was never ticked`);
}

/** One ward setting as hubctl reads it from the database (null = not set). */
function wardSetting(dataDir, name) {
  const shown = hubctl(dataDir, "settings", "show");
  // A map of name → value, or the descriptors the window gets ([{setting, value, ...}]).
  if (Array.isArray(shown)) return shown.find((d) => d.setting === name)?.value ?? null;
  return shown[name] ?? null;
}

/** Types multi-line text into a textarea: WebKit's driver drops "\n" from typed text, so Enter is pressed. */
async function typeLines(app, id, text) {
  const el = await app.findById(id);
  await el.clear();
  const lines = text.split("\n");
  await el.sendKeys(...lines.flatMap((line, i) => (i ? [Key.ENTER, line] : [line])));
  await app.waitFor(async () => (await app.value(id)) === text, `#${id} never held the typed text`);
}

async function waitNotice(app, pattern, message) {
  await app.waitFor(async () => pattern.test(await app.text("notice")), message);
}

async function templateOptions(app) {
  return app.driver.executeScript(
    'const s = document.getElementById("new-note-template"); return s ? [...s.options].map((o) => o.value + "|" + o.textContent) : [];',
  );
}

describe("ward settings and note templates", () => {
  let driver;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("co-signature set in the window holds a note approved without a verified role; a template is added, edited, used and retired", async () => {
    const dataDir = makeDataDir({ demo: true });
    dirs.push(dataDir);
    hubctl(dataDir, "user", USER);
    hubctl(dataDir, "patients", "add", "--bed", "Bed 9", "--name", "Ana Lopes");
    // SystmOne is pointed at a port nothing listens on: this test needs no SystmOne.
    const port = await reservePort();
    const stamp = Date.now();
    const templateName = `Falls review ${stamp}`;
    const templateBody = "Falls review <i>post-fall</i>\nInjuries seen:\nObs:\nPlan:";
    const editedBody = "Falls review <i>post-fall</i> & head injury check\nInjuries seen:\nNeuro obs:\nPlan:";

    const app = await App.launch(driver, dataDir, ["--demo", "--systmone", `127.0.0.1:${port}`]);
    try {
      await step(app, "settings-invalid", async () => {
        await app.navigate("settings");
        await app.find("ward-settings-form");
        // Drawn from the backend's descriptors: a checkbox per flag, a text box per text setting.
        assert.equal(await (await app.findById("ward-require-cosignature")).getAttribute("type"), "checkbox");
        assert.equal(await (await app.findById("ward-systmone-api-disabled")).getAttribute("type"), "checkbox");
        assert.equal(await (await app.findById("ward-idle-lock-minutes")).getAttribute("type"), "text");
        assert.equal(await app.exists("ward-current-user-role"), false, "no role setting: roles come from SystmOne");
        assert.equal(await (await app.findById("ward-require-cosignature")).isSelected(), false);
        // A default assignee without its kind: the backend refuses it, and says so beside the box.
        await app.fill("ward-task-default-assignee", "Ward 7 Nurses");
        await app.click("ward-settings-save");
        await app.waitFor(async () => (await app.find("error-summary")).isDisplayed(), "no error summary for an assignee without a kind");
        await app.find("ward-task-default-assignee-error");
        assert.match(await app.text("error-summary"), /team:NAME/);
        assert.equal(await app.value("ward-task-default-assignee"), "Ward 7 Nurses", "what was typed is kept");
        assert.equal(wardSetting(dataDir, "task-default-assignee"), null, "the refused value is not saved");
        assert.equal(wardSetting(dataDir, "require-cosignature"), null, "nothing else was saved");
      });

      await step(app, "settings-save", async () => {
        // The assignee refused above is cleared; what is left only makes the ward safer.
        await app.fill("ward-task-default-assignee", "");
        await tick(app, "ward-require-cosignature");
        await app.fill("ward-idle-lock-minutes", "5");
        await app.click("ward-settings-save");
        await waitNotice(app, /^Ward settings saved/, "no saved notice");
        assert.equal(await (await app.find("error-summary")).isDisplayed(), false);
        assert.equal(wardSetting(dataDir, "require-cosignature"), "true");
        assert.equal(wardSetting(dataDir, "idle-lock-minutes"), "5");
        assert.equal(wardSetting(dataDir, "systmone-api-disabled"), null, "an untouched setting stays unset");
        // Loosening needs a verified SystmOne role: refused, saying why, nothing saved.
        await app.fill("ward-task-default-assignee", "team:Ward 7 Nurses");
        await app.click("ward-settings-save");
        await app.waitFor(async () => /needs a verified role/.test(await app.text("error-summary")), "a loosening change without a verified role was not refused");
        assert.equal(wardSetting(dataDir, "task-default-assignee"), null);
        await app.fill("ward-task-default-assignee", "");
        // Reopened, the form shows what the database holds.
        await app.navigate("board");
        await app.navigate("settings");
        assert.equal(await (await app.findById("ward-require-cosignature")).isSelected(), true);
        assert.equal(await (await app.findById("ward-systmone-api-disabled")).isSelected(), false);
        assert.equal(await app.value("ward-idle-lock-minutes"), "5");
        assert.equal(await app.value("ward-task-default-assignee"), "");
      });

      await step(app, "settings-changed-elsewhere", async () => {
        // Focus away from the form, as after saving and looking elsewhere on the page.
        await app.driver.executeScript('document.getElementById("settings-title").focus()');
        hubctl(dataDir, "settings", "set", "idle-lock-minutes", "3");
        await app.waitFor(async () => (await app.value("ward-idle-lock-minutes")) === "3",
          "a setting changed by hubctl never showed in the open form");
        assert.equal(await (await app.findById("ward-require-cosignature")).isSelected(), true, "the other settings are as they were");
      });

      await step(app, "settings-cosignature", async () => {
        const text = `Student note ${stamp}`;
        await app.navigate("notes");
        await app.fill("new-note-text", text);
        await app.click("new-note-start");
        await app.waitFor(async () => (await app.value("note-editor")) === text, "the new draft never opened in the editor");
        await app.click("note-preview");
        // Not linked to SystmOne: only the clipboard route is offered.
        await app.click("note-approve-clipboard");
        await waitNotice(app, /waiting for co-signature/, "no co-signature notice");
        await app.waitFor(async () => (await liveText(app, "note-status")) === "Awaiting co-signature", "the note never showed awaiting co-signature");
        await app.find("note-cosign-block");
        const note = hubctl(dataDir, "notes", "list").find((n) => n.body === text);
        assert.equal(note?.status, "awaiting_cosignature", JSON.stringify(note));
      });

      let templateId;
      await step(app, "templates-add", async () => {
        await app.navigate("settings");
        await app.fill("template-name", templateName);
        await typeLines(app, "template-body", templateBody);
        await app.click("template-add");
        await waitNotice(app, new RegExp(`^Template added: ${templateName}$`), "no template added notice");
        templateId = await app.driver.executeScript(
          `return [...document.querySelectorAll('[data-testid$="-name"]')].find((el) => el.textContent === ${JSON.stringify(templateName)})?.dataset.testid.split("-")[1] ?? null;`,
        );
        assert.ok(templateId, "the new template is listed");
        assert.equal(await app.text(`template-${templateId}-first-line`), "Falls review <i>post-fall</i>", "markup shown as text");
        assert.equal(await app.driver.executeScript('return document.querySelectorAll("#templates i").length'), 0, "no <i> element was made from the text");
        assert.equal(await app.value("template-name"), "", "the add form is emptied");
      });

      await step(app, "templates-conflict", async () => {
        await app.click(`template-${templateId}-edit`);
        await app.fill("template-edit-body", "My edit that must not overwrite");
        // Someone else saves a change to the same template meanwhile.
        const before = await app.driver.executeAsyncScript(
          `const done = arguments[arguments.length - 1];
           window.__TAURI__.core.invoke("note_templates", { includeRetired: false })
             .then((list) => list.find((t) => t.id === ${Number(templateId)}))
             .then((t) => window.__TAURI__.core.invoke("update_note_template", { id: t.id, version: t.version, body: ${JSON.stringify(editedBody)} }))
             .then((t) => done(t), (e) => done({ error: e }));`,
        );
        assert.equal(before.body, editedBody, JSON.stringify(before));
        await app.click("template-save");
        await app.find("template-conflict-callout");
        assert.match(await app.text("error-summary"), /changed by .* since you opened it/);
        assert.equal(await app.value("template-edit-body"), "My edit that must not overwrite", "the typing is kept");
        await app.click("template-load-saved");
        await app.waitFor(async () => (await app.value("template-edit-body")) === editedBody, "the saved version was never loaded");
        await app.click("template-cancel");
      });

      await step(app, "templates-use", async () => {
        await app.navigate("notes");
        await app.find("new-note-template");
        assert.ok((await templateOptions(app)).includes(`${templateId}|${templateName}`), "the new template is offered");
        await app.select("new-note-template", templateId);
        await app.click("new-note-from-template");
        await app.waitFor(async () => (await app.value("note-editor")).includes(editedBody), "the template text never reached the editor");
      });

      await step(app, "templates-retire", async () => {
        await app.navigate("settings");
        await app.click(`template-${templateId}-retire`);
        await waitNotice(app, /^Template retired/, "no retired notice");
        await app.find(`template-${templateId}-retired`);
        assert.equal(await app.exists(`template-${templateId}-edit`), false, "a retired template cannot be edited");
        await app.navigate("notes");
        await app.find("new-note-template");
        const options = await templateOptions(app);
        assert.ok(options.length > 0, "the ward's other templates are still offered");
        assert.equal(options.some((o) => o.startsWith(`${templateId}|`)), false, `the retired template is gone: ${options}`);
      });

      await step(app, "templates-restore", async () => {
        await app.navigate("settings");
        await app.click(`template-${templateId}-restore`);
        await waitNotice(app, /^Template restored/, "no restored notice");
        await app.find(`template-${templateId}-edit`);
        await app.navigate("notes");
        await app.find("new-note-template");
        await app.waitFor(
          async () => (await templateOptions(app)).some((o) => o.startsWith(`${templateId}|`)),
          "the restored template is offered again",
        );
      });
    } finally {
      await app.close();
    }
  });
});
