#!/usr/bin/env bash
# Measures the release build of Inpatient Hub (issue 13 item 9) and prints:
#   - installer size: the .deb under target/release/bundle/deb/ (built with `npx tauri build
#     --bundles deb` when there is none; MEASURE_BUILD_DEB=0 skips that and the figure);
#   - cold start to first paint, median of 5 (MEASURE_STARTS): from launching the binary to
#     the app's log line "window page loaded", which Tauri's page-load hook writes when
#     WebKit has finished loading the window's page (its HTML, styles and scripts have run,
#     so the first view has been laid out and painted). The board's rows arrive from the
#     database a few milliseconds later, not included. Before each start the page cache is
#     dropped when the script may (root); otherwise the figure is a warm-cache start and says so;
#   - memory of ALL the app's processes (the app, WebKitWebProcess, WebKitNetworkProcess: every
#     descendant) as PSS summed from /proc/PID/smaps_rollup, after a minute idle on a 30-bed
#     board (MEASURE_IDLE_SECS);
#   - idle CPU over the following minute: utime+stime from /proc/PID/stat of the same
#     processes, as a percentage of one core.
# Runs on a virtual display (Xvfb) when there is none, on a temporary live database (key in
# INPATIENT_HUB_DB_KEY, never the keychain) with SystmOne's port closed (as on a PC where
# SystmOne is not running; MEASURE_SYSTMONE=HOST:PORT points it elsewhere). Linux only.
# Goals (issue 13): installer < 15 MB, first paint < 1 s, PSS < 200 MB in all, idle CPU < 1 %.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"; fi
[[ $(uname -s) == Linux ]] || { echo "[measure] Linux only (/proc)" >&2; exit 1; }

TARGET_DIR=${CARGO_TARGET_DIR:-target}
APP="$TARGET_DIR/release/inpatient-hub"
HUBCTL="$TARGET_DIR/release/hubctl"
STARTS=${MEASURE_STARTS:-5}
IDLE_SECS=${MEASURE_IDLE_SECS:-60}
BEDS=30
SYSTMONE=${MEASURE_SYSTMONE:-127.0.0.1:9}

say() { echo "[measure] $*" >&2; }

# --- the release build (as `tauri build` makes it: assets embedded, custom protocol) ---------
if [[ ! -x $APP || ! -x $HUBCTL || ${MEASURE_REBUILD:-0} == 1 ]]; then
  say "building the release app and hubctl (takes a while)"
  cargo build --release -p inpatient-hub --features custom-protocol
  cargo build --release -p hubctl
fi

# --- installer size ---------------------------------------------------------------------------
deb_size="not measured (MEASURE_BUILD_DEB=0 and no .deb under $TARGET_DIR/release/bundle/deb)"
find_deb() { ls -t "$TARGET_DIR"/release/bundle/deb/*.deb 2>/dev/null | head -n 1; }
deb=$(find_deb || true)
if [[ -z $deb && ${MEASURE_BUILD_DEB:-1} != 0 ]]; then
  if [[ ! -x node_modules/.bin/tauri ]]; then
    say "the tauri CLI is not in node_modules (run scripts/setup.sh): no installer built"
  else
    say "building the .deb (npx tauri build --bundles deb)"
    npx tauri build --bundles deb >&2
    deb=$(find_deb || true)
  fi
fi
if [[ -n $deb ]]; then
  bytes=$(stat -c %s "$deb")
  deb_size="$(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB (%.1f MB)", b / 1048576, b / 1000000 }') — $(basename "$deb")"
fi

# --- a display, a ward and a clean environment ---------------------------------------------------
WORK=$(mktemp -d)
XVFB_PID=""
APP_PGID=""
cleanup() {
  if [[ -n $APP_PGID ]]; then kill -- "-$APP_PGID" 2>/dev/null || true; fi
  if [[ -n $XVFB_PID ]]; then kill "$XVFB_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} ]]; then
  command -v Xvfb >/dev/null || { say "no display and no Xvfb"; exit 1; }
  display_number=99
  while [[ -e /tmp/.X11-unix/X$display_number || -e /tmp/.X$display_number-lock ]]; do
    display_number=$((display_number + 1))
  done
  Xvfb ":$display_number" -screen 0 1280x800x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
  XVFB_PID=$!
  export DISPLAY=":$display_number"
  for _ in $(seq 50); do [[ -e /tmp/.X11-unix/X$display_number ]] && break; sleep 0.1; done
  say "virtual display $DISPLAY"
fi

export INPATIENT_HUB_DB_KEY
INPATIENT_HUB_DB_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export INPATIENT_HUB_LOG=info
unset INPATIENT_HUB_DEMO INPATIENT_HUB_DATA_DIR INPATIENT_HUB_API_KEY
DATA="$WORK/data"
mkdir -p "$DATA"

say "filling a $BEDS-bed board"
hubctl() { INPATIENT_HUB_LOG_DIR="$WORK/hubctl-logs" "$HUBCTL" --data-dir "$DATA" --systmone "$SYSTMONE" "$@"; }
yesterday=$(date -d yesterday '+%Y-%m-%d 09:00')
later=$(date -d '+3 hours' '+%Y-%m-%d %H:00')
tomorrow=$(date -d tomorrow '+%Y-%m-%d 14:00')
for bed in $(seq "$BEDS"); do
  id=$(hubctl --json patients add --bed "Bed $bed" --name "Measure Patient $bed" | sed -n 's/^ *"id": *\([0-9]*\).*/\1/p' | head -n 1)
  hubctl tasks add --patient "$id" --title "Bloods" --due "$yesterday" >/dev/null
  hubctl tasks add --patient "$id" --title "Obs review" --due "$later" --assign "Nurse A" >/dev/null
  hubctl tasks add --patient "$id" --title "Discharge letter" --due "$tomorrow" >/dev/null
done

# --- helpers --------------------------------------------------------------------------------------
# Every descendant of $1, and $1.
family() {
  local pids=("$1") found=1
  declare -A seen=(["$1"]=1)
  while ((found)); do
    found=0
    for stat in /proc/[0-9]*/stat; do
      local line rest pid ppid
      read -r line <"$stat" 2>/dev/null || continue
      pid=${line%% *}
      rest=${line##*) }
      ppid=$(awk '{ print $2 }' <<<"$rest")
      if [[ -n ${seen[$ppid]:-} && -z ${seen[$pid]:-} ]]; then
        seen[$pid]=1
        pids+=("$pid")
        found=1
      fi
    done
  done
  echo "${pids[@]}"
}

# utime+stime (clock ticks) of a process; empty when it has gone.
cpu_ticks() {
  local line rest
  read -r line <"/proc/$1/stat" 2>/dev/null || return 0
  rest=${line##*) }
  awk '{ print $12 + $13 }' <<<"$rest"
}

# PSS of a process in kB.
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || true; }

# Starts the app in its own process group; sets APP_PID/APP_PGID and the run's log folder.
start_app() {
  local logs=$1
  INPATIENT_HUB_LOG_DIR="$logs" setsid "$APP" --data-dir "$DATA" --systmone "$SYSTMONE" \
    >"$logs.out" 2>&1 &
  APP_PID=$!
  APP_PGID=$APP_PID
}

stop_app() {
  kill -- "-$APP_PGID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$APP_PGID" 2>/dev/null || true
  APP_PGID=""
}

# Milliseconds from launch until the page-load line is in the run's log.
wait_for_first_paint() {
  local logs=$1 started=$2 now
  for _ in $(seq 3000); do
    if grep -qs "window page loaded" "$logs"/inpatient-hub.*.log; then
      now=$(date +%s%N)
      echo $(((now - started) / 1000000))
      return 0
    fi
    kill -0 "$APP_PID" 2>/dev/null || { cat "$logs.out" >&2; say "the app exited"; return 1; }
    sleep 0.01
  done
  say "no page-load line after 30 s"
  return 1
}

can_drop_caches=0
if [[ -w /proc/sys/vm/drop_caches ]] && sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
  can_drop_caches=1
fi

# --- cold start to first paint ------------------------------------------------------------------
times=()
for run in $(seq "$STARTS"); do
  ((can_drop_caches)) && { sync; echo 3 >/proc/sys/vm/drop_caches; }
  logs="$WORK/logs-start-$run"
  started=$(date +%s%N)
  start_app "$logs"
  ms=$(wait_for_first_paint "$logs" "$started")
  times+=("$ms")
  say "start $run: ${ms} ms"
  stop_app
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
start_kind=$([[ $can_drop_caches == 1 ]] && echo "cold: page cache dropped before each" || echo "warm cache: could not drop the page cache")

# --- memory and idle CPU ----------------------------------------------------------------------------
logs="$WORK/logs-idle"
start_app "$logs"
wait_for_first_paint "$logs" "$(date +%s%N)" >/dev/null
say "idle for ${IDLE_SECS} s on the $BEDS-bed board, then measuring CPU for ${IDLE_SECS} s"
sleep "$IDLE_SECS"
read -r -a pids <<<"$(family "$APP_PID")"
declare -A ticks_before=()
for pid in "${pids[@]}"; do ticks_before[$pid]=$(cpu_ticks "$pid"); done
sleep "$IDLE_SECS"
total_ticks=0
total_pss=0
details=()
for pid in "${pids[@]}"; do
  after=$(cpu_ticks "$pid")
  [[ -n $after && -n ${ticks_before[$pid]} ]] || continue
  total_ticks=$((total_ticks + after - ticks_before[$pid]))
  pss=$(pss_kb "$pid")
  total_pss=$((total_pss + ${pss:-0}))
  details+=("$(tr -d '\0' <"/proc/$pid/comm") $((${pss:-0} / 1024)) MB")
done
hz=$(getconf CLK_TCK)
stop_app

# --- the figures ------------------------------------------------------------------------------------
echo "Inpatient Hub release build ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
echo "installer (.deb):          $deb_size   (goal < 15 MB)"
echo "start to first paint:      median ${median} ms of ${STARTS} (${times[*]} ms; $start_kind)   (goal < 1000 ms)"
awk -v kb="$total_pss" -v n="${#details[@]}" 'BEGIN { printf "memory (PSS, all %d processes): %.0f MB   (goal < 200 MB)\n", n, kb / 1024 }'
printf '    %s\n' "${details[@]}"
awk -v t="$total_ticks" -v hz="$hz" -v s="$IDLE_SECS" 'BEGIN { printf "idle CPU over %d s:        %.2f %% of one core   (goal < 1 %%)\n", s, t / hz / s * 100 }'
