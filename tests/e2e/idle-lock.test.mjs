// The idle lock end to end: after the ward's idle period the window hides everything (patient data
// included) behind a lock screen; unlocking asks the backend afresh who is here, and the status
// strip names who acts. The ward's shortest period (1 minute) keeps the wait short; a change to a
// shorter lock makes the ward safer, so it needs no verified role (no SystmOne here).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import { App, hubctl, makeDataDir, removeDataDir, startDriver, step, assertAccessible } from "./harness.mjs";

describe("idle lock", () => {
  let driver;
  const dirs = [];

  before(async () => {
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("an idle window locks, hides patient data, and re-checks who is here on unlock", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    hubctl(dataDir, "patients", "add", "--bed", "Bed 2", "--name", "Ida Lockwood");
    hubctl(dataDir, "settings", "set", "idle-lock-minutes", "1");
    assert.throws(() => hubctl(dataDir, "settings", "set", "idle-lock-minutes", "0"), /cannot be switched off/);
    const app = await App.launch(driver, dataDir);
    try {
      await step(app, "idle-lock-locks", async () => {
        assert.equal(await (await app.findById("idle-lock")).isDisplayed(), false, "not locked while in use");
        await app.waitFor(async () => (await app.findById("idle-lock")).isDisplayed(), "the window never locked", 100_000);
        const hidden = await app.driver.executeScript('return document.getElementById("app-content").inert === true');
        assert.equal(hidden, true, "patient data is out of reach of keyboard and screen readers while locked");
        assert.match(await app.text("idle-lock-was"), new RegExp(`Last used by ${userInfo().username}`));
        await assertAccessible(app, "the idle-lock screen");
      });
      await step(app, "idle-lock-unlocks", async () => {
        await app.click("idle-unlock");
        await app.waitFor(async () => !(await (await app.findById("idle-lock")).isDisplayed()), "unlocking never opened the window");
        const open = await app.driver.executeScript('return document.getElementById("app-content").inert === false');
        assert.equal(open, true);
        assert.equal(await app.text("current-user"), userInfo().username);
        assert.match(await app.text("acting-identity"), /SystmOne: not connected/);
      });
    } finally {
      await app.close();
    }
  });
});
