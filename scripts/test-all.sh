#!/usr/bin/env bash
# Runs every test Inpatient Hub has: set-up, formatting and lint checks, a build of both binaries,
# all Rust tests of every workspace crate, then the
# end-to-end tests that drive the real window through WebDriver. Stops at the first failing step.
# The tests run inside one private D-Bus session with an unlocked throw-away keyring (for the OS
# keychain) and one Xvfb display (for the window), so this works on a headless machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
# Rust installed by rustup lives here; a non-login shell (CI) may not have it on PATH yet.
if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"; fi

if [[ ${INPATIENT_HUB_TEST_SESSION:-} != 1 ]]; then
  ./scripts/setup.sh
  # A keyring and data folder of its own: tests never touch the user's real keychain or ward data.
  session_home=$(mktemp -d "${TMPDIR:-/tmp}/inpatient-hub-tests.XXXXXX")
  trap 'rm -rf "$session_home"' EXIT
  # XDG_STATE_HOME: the log files of every app and hubctl run go there, not to the user's logs.
  export INPATIENT_HUB_TEST_SESSION=1 XDG_DATA_HOME="$session_home/data" XDG_STATE_HOME="$session_home/state"
  mkdir -p "$XDG_DATA_HOME" "$XDG_STATE_HOME"
  dbus-run-session -- bash -c '
    echo -n inpatient-hub-tests | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    exec xvfb-run -a -s "-screen 0 1280x900x24" "$0"' "$ROOT/scripts/test-all.sh"
  exit $?
fi

# The window's accessibility bridge is not needed under Xvfb and only adds D-Bus noise.
export NO_AT_BRIDGE=1

OUTPUT_LOG=$(mktemp "${TMPDIR:-/tmp}/inpatient-hub-test-output.XXXXXX")
declare -a STEP_NAMES=() STEP_TIMES=()
step() {
  local name=$1
  shift
  printf '\n==> %s\n' "$name"
  local start=$SECONDS
  "$@" 2>&1 | tee -a "$OUTPUT_LOG"
  STEP_NAMES+=("$name")
  STEP_TIMES+=("$((SECONDS - start))")
}
summary() {
  local status=$?
  printf '\n==> test-all summary\n'
  for i in "${!STEP_NAMES[@]}"; do printf '  ok    %-32s %4ss\n' "${STEP_NAMES[$i]}" "${STEP_TIMES[$i]}"; done
  if ((status != 0)); then printf '  FAILED (exit %s): see the step above\n' "$status"; fi
  # Totals over both runners: cargo's "test result: ... N passed; N failed" and node's "pass N" / "fail N".
  local passed failed
  passed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^passed;?$/) p += $i } NF == 3 && $2 == "pass" && $3 ~ /^[0-9]+$/ { p += $3 } END { print p + 0 }' "$OUTPUT_LOG")
  failed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed;?$/) f += $i } NF == 3 && $2 == "fail" && $3 ~ /^[0-9]+$/ { f += $3 } END { print f + 0 }' "$OUTPUT_LOG")
  rm -f "$OUTPUT_LOG"
  if ((status != 0 && failed == 0)); then failed=1; fi
  printf 'test-all: %s passed, %s failed\n' "$passed" "$failed"
}
trap summary EXIT

step "cargo fmt --check" cargo fmt --all --check
# hubctl's `simulator` feature is off by default (release builds leave the simulator out); the
# demo, the e2e tests and their builds turn it on, and clippy checks hubctl both ways.
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets --features hubctl/simulator -- -D warnings
step "cargo clippy hubctl (release set)" cargo clippy -p hubctl --all-targets -- -D warnings
step "cargo build --bins" cargo build --workspace --bins --features hubctl/simulator
# The same features as the build above, so the hubctl the e2e tests run keeps `hubctl sim`.
step "cargo test (all Rust tests)" cargo test --workspace --no-fail-fast --features hubctl/simulator
step "end-to-end tests (WebDriver)" node --test --test-reporter=spec tests/e2e/
# The release .deb built, installed and tested as installed (needs root and dpkg: CI always;
# elsewhere it says why it skips). See docs/installers.md.
step "installed .deb (release build)" ./scripts/test-installed.sh
