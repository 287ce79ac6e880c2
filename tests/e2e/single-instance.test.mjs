// One window per ward database: a second launch on the same data folder (a second double-click)
// hands over to the running window and exits; a launch on another folder (the demo's, another
// test's) is a window of its own.
//
// On Linux the single-instance lock is a name on the D-Bus session bus, so this runs inside a
// D-Bus session (scripts/test-all.sh starts one with dbus-run-session).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { App, appBinary, makeDataDir, removeDataDir, startDriver, step } from "./harness.mjs";

/** Starts the app binary directly (not through WebDriver), as a second double-click would. */
function launchDirectly(dataDir) {
  const child = spawn(appBinary(), ["--data-dir", dataDir], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
    child.on("error", (error) => resolve({ error }));
  });
  return { child, exited, output: () => output };
}

/** What `promise` settles to within `ms`, or `null` if it has not by then. */
async function within(ms, promise) {
  return Promise.race([promise, sleep(ms).then(() => null)]);
}

describe("single instance", () => {
  let driver;
  const dirs = [];

  before(async () => {
    assert.ok(
      process.platform !== "linux" || process.env.DBUS_SESSION_BUS_ADDRESS,
      "no D-Bus session: the single-instance lock needs one on Linux (run under dbus-run-session, as scripts/test-all.sh does)",
    );
    driver = await startDriver();
  });

  after(async () => {
    await driver?.stop();
    for (const dir of dirs) removeDataDir(dir);
  });

  test("a second launch on the same data folder exits and the first window stays the only one", async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const app = await App.launch(driver, dataDir);
    try {
      const handles = await app.driver.getAllWindowHandles();
      assert.equal(handles.length, 1);

      await step(app, "second-launch-exits", async () => {
        const second = launchDirectly(dataDir);
        const result = await within(20_000, second.exited);
        if (result === null) second.child.kill("SIGKILL");
        assert.notEqual(result, null, `the second launch was still running after 20 s:\n${second.output()}`);
        assert.deepEqual(result, { code: 0, signal: null }, `the second launch must exit cleanly:\n${second.output()}`);
      });

      await step(app, "first-window-still-works", async () => {
        assert.deepEqual(await app.driver.getAllWindowHandles(), handles, "no second window was opened");
        await app.waitUntilReady();
        await app.navigate("settings");
        await app.navigate("board");
      });
    } finally {
      await app.close();
    }
  });

  test("a launch on another data folder is a window of its own", async () => {
    const dataDir = makeDataDir();
    const otherDir = makeDataDir();
    dirs.push(dataDir, otherDir);
    const app = await App.launch(driver, dataDir);
    const other = launchDirectly(otherDir);
    try {
      const result = await within(5_000, other.exited);
      assert.equal(result, null, `a launch on another folder must not be refused: ${JSON.stringify(result)}\n${other.output()}`);
      await app.waitUntilReady();
    } finally {
      other.child.kill("SIGTERM");
      if ((await within(5_000, other.exited)) === null) other.child.kill("SIGKILL");
      await app.close();
    }
  });
});
