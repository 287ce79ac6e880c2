// Ward settings and note templates end to end: co-signature switched on and the role set in the
// window make an approved note wait for a co-signature; a template added in the window is
// offered in Case notes, edited with a conflict shown (never overwritten), and retired.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Key } from "selenium-webdriver";
import { App, By, hubctl, makeDataDir, removeDataDir, reservePort, startDriver, step } from "./harness.mjs";

const USER = "Nurse Able";

/** The text of `[data-testid=id]` read in one go (the notes view redraws every 2 s), or null. */
async function liveText(app, id) {
  return app.driver.executeScript(`const el = document.querySelector('[data-testid="${id}"]'); return el ? el.textContent : null;`);
}

/** Presses a radio's label, as a person would (NHS.UK draws a styled circle over the input). */
async function chooseRadio(app, id) {
  await app.driver.findElement(By.css(`label[for="${id}"]`)).click();
  await app.waitFor(async () => (await app.findById(id)).isSelected(), `#${id} was never selected`);
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

  test("co-signature and role set in the window hold a student's note; a template is added, edited, used and retired", async () => {
    const dataDir = makeDataDir();
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
        assert.equal(await app.findById("ward-cosign-yes").then((e) => e.isSelected()), false);
        await chooseRadio(app, "ward-cosign-yes");
        await app.select("ward-assignee-kind", "user");
        await app.click("ward-settings-save");
        await app.waitFor(async () => (await app.find("error-summary")).isDisplayed(), "no error summary for a kind without a name");
        assert.match(await app.text("error-summary"), /Enter the user's name/);
        assert.equal(hubctl(dataDir, "settings", "show")["require-cosignature"], null, "nothing is saved while a field is wrong");
      });

      await step(app, "settings-save", async () => {
        await app.fill("ward-role", "Student Nurse");
        await app.select("ward-assignee-kind", "team");
        await app.fill("ward-assignee-name", "Ward 7 Nurses");
        await app.click("ward-settings-save");
        await waitNotice(app, /^Ward settings saved/, "no saved notice");
        assert.equal(await (await app.find("error-summary")).isDisplayed(), false);
        const settings = hubctl(dataDir, "settings", "show");
        assert.equal(settings["require-cosignature"], "true");
        assert.equal(settings["current-user-role"], "Student Nurse");
        assert.equal(settings["task-default-assignee"], "team:Ward 7 Nurses");
        assert.equal(settings["systmone-api-disabled"], null, "an untouched setting stays unset");
        // Reopened, the form shows what the database holds.
        await app.navigate("board");
        await app.navigate("settings");
        assert.equal(await (await app.findById("ward-cosign-yes")).isSelected(), true);
        assert.equal(await app.value("ward-role"), "Student Nurse");
        assert.equal(await app.value("ward-assignee-kind"), "team");
        assert.equal(await app.value("ward-assignee-name"), "Ward 7 Nurses");
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
