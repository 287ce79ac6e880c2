// The window's narrow capability (capabilities/default.json) end to end: every call the UI makes
// still works — the app's own commands and listening to the backend's events (hub:changed) —
// while a core API the capability does not grant is refused. An overly narrow capability
// breaks the window silently (a denied invoke), so this is checked in the real window.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { App, makeDataDir, removeDataDir, startDriver, step } from "./harness.mjs";

/** Runs `body` (a JS expression giving a promise) in the window; `{ok}` or `{error}`. */
async function inWindow(app, body) {
  return app.driver.executeAsyncScript(
    `const done = arguments[arguments.length - 1];
     Promise.resolve().then(() => ${body}).then((ok) => done({ ok: ok ?? null }), (e) => done({ error: String(e?.message ?? e) }));`,
  );
}

describe("least privilege in the window", () => {
  let driver;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("the app's commands and events work, and ungranted core APIs are refused", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const app = await App.launch(driver, dataDir);
    try {
      await step(app, "capability-commands", async () => {
        const status = await inWindow(app, `window.__TAURI__.core.invoke("app_status")`);
        assert.equal(status.error, undefined, `app_status was refused: ${status.error}`);
        const settings = await inWindow(app, `window.__TAURI__.core.invoke("ward_settings")`);
        assert.equal(settings.error, undefined, `ward_settings was refused: ${settings.error}`);
        assert.ok(settings.ok.some((s) => s.setting === "keep-clipboard-after-paste"), JSON.stringify(settings.ok));
      });
      await step(app, "capability-events", async () => {
        // Listening is granted (events.js); a command that writes is heard as hub:changed.
        const heard = await inWindow(
          app,
          `new Promise((resolve, reject) => {
             window.__TAURI__.event
               .listen("hub:changed", (event) => resolve(event.payload))
               .then(() => window.__TAURI__.core.invoke("add_patient", { input: { bed: "Bed 9", name: "Cap Test" } }))
               .catch(reject);
             setTimeout(() => reject(new Error("no hub:changed within 10 s")), 10000);
           })`,
        );
        assert.equal(heard.error, undefined, `listening or the event failed: ${heard.error}`);
        assert.ok(Array.isArray(heard.ok?.scopes), JSON.stringify(heard.ok));
      });
      await step(app, "capability-refusals", async () => {
        // Not granted: emitting events, and the window API (core:default would allow both).
        const emitted = await inWindow(app, `window.__TAURI__.event.emit("hub:changed", { scopes: ["all"] })`);
        assert.match(emitted.error ?? "", /not allowed|denied/i, JSON.stringify(emitted));
        const title = await inWindow(app, `window.__TAURI__.core.invoke("plugin:window|title", { label: "main" })`);
        assert.match(title.error ?? "", /not allowed|denied/i, JSON.stringify(title));
      });
    } finally {
      await app.close();
    }
  });
});
