// End-to-end harness: starts tauri-driver on free ports, opens the real app binary through
// WebDriver on a throw-away data directory, and cleans everything up.
//
// Needs a display (run under `xvfb-run -a`), `tauri-driver` (cargo install tauri-driver
// --version 2.1.0 --locked) and WebKitWebDriver (Debian: webkit2gtk-driver).
// INPATIENT_HUB_APP overrides the app binary; otherwise <target>/debug/inpatient-hub.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Builder, By, until } from "selenium-webdriver";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export { By, until };

export function appBinary() {
  if (process.env.INPATIENT_HUB_APP) return resolve(process.env.INPATIENT_HUB_APP);
  const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repoRoot, "target");
  const exe = process.platform === "win32" ? "inpatient-hub.exe" : "inpatient-hub";
  return join(target, "debug", exe);
}

/** hubctl from the same build as the app, to change the database behind the window's back. */
export function hubctlBinary() {
  if (process.env.INPATIENT_HUB_HUBCTL) return resolve(process.env.INPATIENT_HUB_HUBCTL);
  return join(dirname(appBinary()), process.platform === "win32" ? "hubctl.exe" : "hubctl");
}

/**
 * Runs hubctl on `dataDir` with `--json`; returns the parsed output or throws with its stderr.
 * On a folder made with `makeDataDir({ demo: true })` it runs in demo mode, as the app does there:
 * a database is marked demo or live when first opened, and the other mode is refused.
 */
export function hubctl(dataDir, ...args) {
  const mode = demoDataDirs.has(dataDir) && !args.includes("--demo") ? ["--demo"] : [];
  const result = spawnSync(hubctlBinary(), ["--data-dir", dataDir, ...mode, "--json", ...args], { encoding: "utf8" });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`hubctl ${args.join(" ")} failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/**
 * Starts the bundled SystmOne simulator (`hubctl sim`, fictitious patients) on a free port with
 * its own data folder. Returns `{address, stop()}`.
 */
export async function startSimulator(simDir) {
  return startSimulatorOn(simDir, await freePort());
}

function tauriDriverBinary() {
  if (process.env.TAURI_DRIVER) return process.env.TAURI_DRIVER;
  const exe = process.platform === "win32" ? "tauri-driver.exe" : "tauri-driver";
  const cargoHome = process.env.CARGO_HOME ?? join(homedir(), ".cargo");
  const installed = join(cargoHome, "bin", exe);
  return existsSync(installed) ? installed : exe;
}

/** A port nobody is listening on right now. */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Starts tauri-driver on two distinct free ports (its default native port clashes otherwise). */
export async function startDriver() {
  const port = await freePort();
  let nativePort = await freePort();
  while (nativePort === port) nativePort = await freePort();
  const binary = tauriDriverBinary();
  // Its own process group (POSIX), so stopping it also ends WebKitWebDriver and any app window a
  // failed test left behind, instead of orphaning them.
  const ownGroup = process.platform !== "win32";
  const child = spawn(binary, ["--port", String(port), "--native-port", String(nativePort)], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: ownGroup,
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  let exited = null;
  child.on("exit", (code, signal) => (exited = { code, signal }));
  child.on("error", (error) => (exited = { error }));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) {
      throw new Error(`tauri-driver (${binary}) exited early: ${JSON.stringify(exited)}\n${output}`);
    }
    try {
      const res = await fetch(`${url}/status`);
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`tauri-driver did not start listening on ${url} within 20 s\n${output}`);
    }
    await sleep(100);
  }
  return {
    url,
    output: () => output,
    async stop() {
      const signalAll = (signal) => {
        try {
          if (ownGroup) process.kill(-child.pid, signal);
          else child.kill(signal);
        } catch {
          // the group is already gone
        }
      };
      if (!exited) {
        signalAll("SIGTERM");
        for (let i = 0; i < 50 && !exited; i++) await sleep(100);
      }
      signalAll("SIGKILL"); // whatever is left in the group (an app window, WebKitWebDriver)
      // A grandchild that escaped the group may still hold these pipes; never let that keep
      // the test process alive.
      child.stdout.destroy();
      child.stderr.destroy();
    },
  };
}

function isStale(e) {
  return e?.name === "StaleElementReferenceError" || /was not found|stale element/i.test(String(e?.message));
}

/**
 * Runs an element operation, starting again (finding the element afresh) if the live-redrawing
 * page replaced the element between finding it and using it.
 */
async function fresh(operation, attempts = 5) {
  for (let i = 1; ; i++) {
    try {
      return await operation();
    } catch (e) {
      if (!isStale(e) || i >= attempts) throw e;
      await sleep(100);
    }
  }
}

/** Data folders whose database is a demo one (the app is launched there with `--demo`). */
const demoDataDirs = new Set();

export function makeDataDir({ demo = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "inpatient-hub-e2e-"));
  if (demo) demoDataDirs.add(dir);
  return dir;
}

export function removeDataDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/** PIDs of processes whose command line mentions `needle` (Linux only; elsewhere none are found). */
function processesMentioning(needle) {
  if (!existsSync("/proc")) return [];
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.includes(needle) && !cmdline.includes("tauri-driver")) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/**
 * One running app window under WebDriver. `close()` ends the session, which quits the app,
 * and waits until no app process is left on that data directory, so a restart really reopens
 * the database from disk.
 */
export class App {
  /** `extraArgs` go to the app after `--data-dir DIR` (e.g. `["--demo"]`). */
  static async launch(driverHandle, dataDir, extraArgs = []) {
    const app = appBinary();
    if (!existsSync(app)) throw new Error(`the app binary ${app} does not exist: run \`cargo build --bins\` first`);
    const capabilities = {
      browserName: "wry",
      "tauri:options": { application: app, args: ["--data-dir", dataDir, ...extraArgs] },
    };
    const driver = await new Builder().usingServer(driverHandle.url).withCapabilities(capabilities).build();
    const instance = new App(driver, dataDir);
    try {
      await instance.waitUntilReady();
    } catch (error) {
      // End the session (and the window) so the next test can open one.
      const shot = await instance.screenshot(`launch-${Date.now()}`);
      if (shot) error.message += `\n(screenshot: ${shot})`;
      error.message += `\n(app binary: ${app}; is it built from this checkout's ui/?)`;
      await instance.close();
      throw error;
    }
    return instance;
  }

  constructor(driver, dataDir) {
    this.driver = driver;
    this.dataDir = dataDir;
  }

  async waitUntilReady(timeout = 20_000) {
    await this.driver.wait(
      async () => (await this.driver.executeScript("return document.body && document.body.dataset.ready === 'true'")) === true,
      timeout,
      "the app window did not finish loading (document.body.dataset.ready)",
    );
  }

  byTestId(id) {
    return By.css(`[data-testid="${id}"]`);
  }

  async find(id, timeout = 10_000) {
    return this.driver.wait(until.elementLocated(this.byTestId(id)), timeout, `no element [data-testid="${id}"] appeared`);
  }

  async findById(id, timeout = 10_000) {
    return this.driver.wait(until.elementLocated(By.id(id)), timeout, `no element #${id} appeared`);
  }

  async exists(id) {
    return (await this.driver.findElements(this.byTestId(id))).length > 0;
  }

  async click(id) {
    await fresh(async () => {
      const el = await this.findById(id);
      await this.driver.wait(until.elementIsVisible(el), 10_000, `#${id} is not visible`);
      await el.click();
    });
  }

  async fill(id, text) {
    await fresh(async () => {
      const el = await this.findById(id);
      await el.clear();
      if (text) await el.sendKeys(text);
    });
  }

  async value(id) {
    return fresh(async () => (await this.findById(id)).getAttribute("value"));
  }

  async text(id) {
    return fresh(async () => (await this.find(id)).getText());
  }

  async select(id, value) {
    await fresh(async () => {
      const el = await this.findById(id);
      await el.findElement(By.css(`option[value="${value}"]`)).click();
    });
  }

  /** Goes to a view through the header navigation and waits for its heading to have focus. */
  async navigate(view) {
    await this.click(`nav-${view}`);
    await this.driver.wait(
      async () => (await this.driver.executeScript("return location.hash + '|' + (document.activeElement && document.activeElement.id)")) === `#${view}|${view}-title`,
      10_000,
      `the ${view} view did not open`,
    );
  }

  async waitFor(predicate, message, timeout = 10_000) {
    // The board redraws itself live: an element replaced mid-check just means "look again".
    const tolerant = async () => {
      try {
        return await predicate();
      } catch (e) {
        if (isStale(e)) return false;
        throw e;
      }
    };
    await this.driver.wait(tolerant, timeout, message);
  }

  /** Saves a screenshot under .e2e/ (git-ignored) to see why a step failed. */
  async screenshot(name) {
    try {
      const dir = join(repoRoot, ".e2e");
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${name.replace(/[^a-z0-9-]+/gi, "_")}.png`);
      writeFileSync(file, await this.driver.takeScreenshot(), "base64");
      return file;
    } catch {
      return null;
    }
  }

  async close() {
    try {
      await this.driver.quit();
    } finally {
      const deadline = Date.now() + 10_000;
      while (processesMentioning(this.dataDir).length && Date.now() < deadline) await sleep(100);
      for (const pid of processesMentioning(this.dataDir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  }
}

/** Runs `body(app)`; on failure saves a screenshot named after the step, then rethrows. */
export async function step(app, name, body) {
  try {
    return await body(app);
  } catch (error) {
    const shot = await app.screenshot(name);
    if (shot) error.message += `\n(screenshot: ${shot})`;
    throw error;
  }
}

/** A free local port, e.g. to point the app at a simulator that is started later (or never). */
export async function reservePort() {
  return freePort();
}

/**
 * Starts the simulator on a given `port` (e.g. one the app was told about before the simulator
 * ran). Returns `{address, stop()}` like `startSimulator`.
 */
export async function startSimulatorOn(simDir, port) {
  const child = spawn(hubctlBinary(), ["--data-dir", simDir, "sim", "--port", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exited = null;
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  child.on("exit", (code, signal) => (exited = { code, signal }));
  child.on("error", (error) => (exited = { error }));
  const deadline = Date.now() + 15_000;
  while (!output.includes(`listening on 127.0.0.1:${port}`)) {
    if (exited) throw new Error(`the simulator exited early: ${JSON.stringify(exited)}\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the simulator did not start listening on port ${port} within 15 s\n${output}`);
    }
    await sleep(100);
  }
  return {
    address: `127.0.0.1:${port}`,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      for (let i = 0; i < 50 && !exited; i++) await sleep(100);
      if (!exited) child.kill("SIGKILL");
      child.stdout.destroy();
      child.stderr.destroy();
    },
  };
}

/**
 * `hubctl simctl …` against the simulator whose data folder is `simDir`: parsed JSON, or the
 * plain text of commands that print no JSON (open, set-faults...).
 */
export function simctl(simDir, ...args) {
  const result = spawnSync(hubctlBinary(), ["--data-dir", simDir, "--json", "simctl", ...args], { encoding: "utf8" });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`hubctl simctl ${args.join(" ")} failed (${result.status}): ${result.stderr}`);
  try {
    return JSON.parse(result.stdout);
  } catch {
    return result.stdout.trim();
  }
}

/** The impacts that fail the accessibility check (issue 13: zero serious or critical). */
const FAILING_IMPACTS = new Set(["serious", "critical"]);

/**
 * Runs axe-core (the pinned npm package, injected through WebDriver) on the page as it is now and
 * returns its serious and critical violations: `[{id, impact, help, nodes: [selector...]}]`.
 */
export async function axeViolations(app) {
  const source = readFileSync(join(repoRoot, "node_modules", "axe-core", "axe.min.js"), "utf8");
  const loaded = await app.driver.executeScript(`${source}\n;return typeof window.axe === "object";`);
  if (!loaded) throw new Error("axe-core did not load into the page");
  const answer = await app.driver.executeAsyncScript(`
    const done = arguments[arguments.length - 1];
    window.axe.run(document, { resultTypes: ["violations"] })
      .then((r) => done(JSON.stringify(r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })))))
      .catch((e) => done(JSON.stringify({ error: String(e) })));`);
  const parsed = JSON.parse(answer);
  if (parsed.error) throw new Error(`axe-core failed: ${parsed.error}`);
  return parsed.filter((v) => FAILING_IMPACTS.has(v.impact));
}

/** Fails, listing each rule and where, when axe-core finds a serious or critical violation. */
export async function assertAccessible(app, where) {
  const violations = await axeViolations(app);
  if (violations.length) {
    const lines = violations.map((v) => `- ${v.impact} ${v.id}: ${v.help}\n    at ${v.nodes.slice(0, 5).join("\n    at ")}`);
    throw new Error(`axe-core found ${violations.length} serious or critical violation(s) on ${where}:\n${lines.join("\n")}`);
  }
}
