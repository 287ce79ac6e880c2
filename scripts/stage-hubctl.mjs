// Tauri's `beforeBuildCommand`: builds the release `hubctl` (its own crate, with no window
// dependencies) and stages it where `bundle.externalBin` looks for it — next to the app's own
// binary, named with the target triple (`hubctl-x86_64-unknown-linux-gnu`, `hubctl-…-msvc.exe`).
// Every installer (deb, msi, nsis, dmg) then installs `hubctl` beside `inpatient-hub`.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const target = process.env.TAURI_ENV_TARGET_TRIPLE
  ?? execFileSync("rustc", ["-vV"], { encoding: "utf8" }).match(/^host: (.+)$/m)?.[1];
if (!target) throw new Error("could not tell the Rust target triple (rustc -vV)");
const args = ["build", "--release", "-p", "hubctl"];
if (process.env.TAURI_ENV_TARGET_TRIPLE) args.push("--target", target);
execFileSync("cargo", args, { stdio: "inherit" });
const dir = join(process.env.CARGO_TARGET_DIR ?? "target", process.env.TAURI_ENV_TARGET_TRIPLE ? target : "", "release");
const exe = process.platform === "win32" ? ".exe" : "";
const built = join(dir, `hubctl${exe}`);
if (!existsSync(built)) throw new Error(`${built} was not built`);
copyFileSync(built, join("target", "release", `hubctl-${target}${exe}`));
