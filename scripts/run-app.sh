#!/usr/bin/env bash
# Sets up, builds and starts Inpatient Hub on its embedded defaults (the ward database in the
# OS's per-user data folder, or --data-dir DIR / INPATIENT_HUB_DATA_DIR). Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Rust installed by rustup lives here; a non-login shell (CI) may not have it on PATH yet.
if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"; fi

./scripts/setup.sh
cargo build --bins
TARGET_DIR=${CARGO_TARGET_DIR:-target}
APP="$TARGET_DIR/debug/inpatient-hub"

# HOOK (demo mode): the README's run command is to start the bundled SystmOne simulator beside
# the app in an unmistakable demo mode. When the simulator and the app's demo flag exist, start the
# simulator here (in the background, killed by the trap below) and add the demo arguments to
# APP_ARGS; the window then shows #demo-banner because app_status reports demo_mode: true.
APP_ARGS=()
start_systmone_simulator_demo() {
  : # not wired yet: the lead adds the simulator launch here
}
start_systmone_simulator_demo

if [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} && $(uname -s) == Linux ]]; then
  if command -v xvfb-run >/dev/null 2>&1; then
    echo "[run-app] no display found: starting the window on a virtual display (xvfb-run); you will not see it" >&2
    exec xvfb-run -a -s "-screen 0 1280x900x24" "$APP" "${APP_ARGS[@]}" "$@"
  fi
  echo "[run-app] no display found (DISPLAY is not set): run this from a desktop session" >&2
  exit 1
fi
exec "$APP" "${APP_ARGS[@]}" "$@"
