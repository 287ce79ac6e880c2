#!/usr/bin/env bash
# Sets up, builds and starts Inpatient Hub. By default it is a DEMO: the bundled SystmOne simulator
# (fictitious organisation and patients) starts beside the window, the window runs with --demo (a
# DEMO banner on every screen) and both use a demo data folder of their own, never the ward's.
#   RUN_APP_DEMO=0 ./scripts/run-app.sh [app args]   starts the app on its embedded defaults instead
#                                                   (the real ward database, SystmOne on 127.0.0.1:40700).
# Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Rust installed by rustup lives here; a non-login shell (CI) may not have it on PATH yet.
if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"; fi

./scripts/setup.sh

# The database key lives in the OS keychain (Secret Service on Linux). A desktop session has one; a
# headless machine (no D-Bus session bus) does not, so a demo there runs inside a private D-Bus
# session with a gnome-keyring of the demo's own (kept under the demo folder, so the next demo run
# finds its key again). A ward PC always has its desktop's keychain; this is never used there.
if [[ ${RUN_APP_DEMO:-1} != 0 && -z ${DBUS_SESSION_BUS_ADDRESS:-} && ${RUN_APP_IN_DEMO_KEYRING:-} != 1 ]]; then
  demo_home=${INPATIENT_HUB_DEMO_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/inpatienthub-demo}
  mkdir -p "$demo_home/keyring"
  chmod 700 "$demo_home" "$demo_home/keyring"
  echo "[run-app] no D-Bus session (no desktop keychain): using a demo keyring in $demo_home/keyring" >&2
  export RUN_APP_IN_DEMO_KEYRING=1 INPATIENT_HUB_DEMO_DIR="$demo_home"
  exec env XDG_DATA_HOME="$demo_home/keyring" dbus-run-session -- bash -c '
    echo -n inpatient-hub-demo | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    exec "$0" "$@"' "$0" "$@"
fi

# hubctl with the simulator (a development build; release builds leave it out).
cargo build -p inpatient-hub -p hubctl --features hubctl/simulator
TARGET_DIR=${CARGO_TARGET_DIR:-target}
APP="$TARGET_DIR/debug/inpatient-hub"
HUBCTL="$TARGET_DIR/debug/hubctl"

APP_ARGS=()
SIM_PID=""
APP_PID=""
cleanup() {
  if [[ -n $APP_PID ]]; then kill "$APP_PID" 2>/dev/null || true; fi
  if [[ -n $SIM_PID ]]; then kill "$SIM_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Demo mode: the simulator on a free local port, the app pointed at it with --demo.
start_systmone_simulator_demo() {
  local demo_dir=${INPATIENT_HUB_DEMO_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/inpatienthub-demo}
  local port log
  port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
  mkdir -p "$demo_dir"
  log="$demo_dir/simulator.log"
  "$HUBCTL" --data-dir "$demo_dir" sim --port "$port" >"$log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 100); do
    grep -q "listening on 127.0.0.1:$port" "$log" 2>/dev/null && break
    kill -0 "$SIM_PID" 2>/dev/null || { cat "$log" >&2; echo "[run-app] the SystmOne simulator did not start" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "listening on 127.0.0.1:$port" "$log" || { cat "$log" >&2; echo "[run-app] the SystmOne simulator did not start listening" >&2; exit 1; }
  echo "[run-app] DEMO MODE: SystmOne simulator (fictitious patients) on 127.0.0.1:$port, data in $demo_dir" >&2
  APP_ARGS=(--demo --systmone "127.0.0.1:$port" --data-dir "$demo_dir")
}
if [[ ${RUN_APP_DEMO:-1} != 0 ]]; then
  start_systmone_simulator_demo
fi

LAUNCH=("$APP")
if [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} && $(uname -s) == Linux ]]; then
  if ! command -v xvfb-run >/dev/null 2>&1; then
    echo "[run-app] no display found (DISPLAY is not set): run this from a desktop session" >&2
    exit 1
  fi
  echo "[run-app] no display found: starting the window on a virtual display (xvfb-run); you will not see it" >&2
  LAUNCH=(xvfb-run -a -s "-screen 0 1280x900x24" "$APP")
fi

# In the background and waited for, so Ctrl-C or a TERM also stops the simulator (trap above).
"${LAUNCH[@]}" "${APP_ARGS[@]}" "$@" &
APP_PID=$!
wait "$APP_PID"
