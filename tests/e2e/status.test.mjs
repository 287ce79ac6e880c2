// The status strip and the demo banner: demo mode must be unmistakable on every view, and
// absent otherwise.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import { App, hubctl, makeDataDir, removeDataDir, startDriver, startSimulator, step } from "./harness.mjs";

const VIEWS = ["board", "handover", "audit", "settings"];

describe("status strip", () => {
  let driver;
  let dataDir;

  before(async () => {
    driver = await startDriver();
    dataDir = makeDataDir({ demo: true });
    hubctl(dataDir, "user", "Nurse Able");
  });

  after(async () => {
    await driver?.stop();
    if (dataDir) removeDataDir(dataDir);
  });

  test("demo mode shows the DEMO banner and title on every view", async () => {
    const app = await App.launch(driver, dataDir, ["--demo"]);
    try {
      for (const view of VIEWS) {
        await step(app, `demo-${view}`, async () => {
          await app.navigate(view);
          const banner = await app.find("demo-banner");
          assert.equal(await banner.isDisplayed(), true, `no DEMO banner on ${view}`);
          assert.match(await banner.getText(), /DEMO MODE/);
          assert.match(await app.driver.executeScript("return document.title"), /^DEMO – /);
        });
      }
      await step(app, "demo-systmone-state", async () => {
        const strip = await app.find("systmone-status");
        await app.waitFor(() => strip.isDisplayed(), "the SystmOne state never showed in the status strip");
        assert.match(await strip.getText(), /^SystmOne: /);
      });
    } finally {
      await app.close();
    }
  });

  test("in demo mode against the simulator the strip shows SystmOne connected", async () => {
    const simDir = makeDataDir();
    const simulator = await startSimulator(simDir);
    try {
      const app = await App.launch(driver, dataDir, ["--demo", "--systmone", simulator.address]);
      try {
        await step(app, "simulator-connected", async () => {
          const strip = await app.find("systmone-status");
          await app.waitFor(async () => (await strip.getAttribute("data-state")) === "connected",
            "the status strip never showed SystmOne connected", 20_000);
          assert.match(await strip.getText(), /^SystmOne: Connected/);
          assert.equal(await app.text("systmone-state"), "Connected");
          assert.equal(await (await app.find("demo-banner")).isDisplayed(), true);
        });
      } finally {
        await app.close();
      }
    } finally {
      await simulator.stop();
      removeDataDir(simDir);
    }
  });

  test("without --demo there is no banner", async () => {
    // A live database of its own: the demo tests' database is refused without --demo.
    const liveDir = makeDataDir();
    hubctl(liveDir, "user", "Nurse Able");
    const app = await App.launch(driver, liveDir);
    try {
      await step(app, "no-demo", async () => {
        assert.equal(await (await app.findById("demo-banner")).isDisplayed(), false);
        assert.doesNotMatch(await app.driver.executeScript("return document.title"), /DEMO/);
        // Who acts is the OS account (no SystmOne here); the typed name is only a label.
        assert.equal(await app.text("current-user"), userInfo().username);
        assert.match(await app.text("acting-identity"), /SystmOne: not connected/);
        assert.match(await app.text("acting-identity"), /label: Nurse Able/);
      });
    } finally {
      await app.close();
      removeDataDir(liveDir);
    }
  });
});
