#!/usr/bin/env bash
# Tests Inpatient Hub as a ward PC gets it: builds the release .deb, checks what it contains
# (no simulator, no devtools), installs it, runs the installed window and hubctl end to end
# (tests/e2e-installed/), upgrades over it and checks the ward's data still opens, then removes
# and purges the package and checks the data is untouched (it lives in the user's folder, never
# in the package).
#
# Needs root and dpkg (it installs a package). Outside CI it says why and skips when either is
# missing, or when Inpatient Hub is already installed here (it would remove that installation);
# in CI (CI=true, as .ci/run sets) those are errors. Needs a display and D-Bus like the other
# end-to-end tests: scripts/test-all.sh runs it inside its Xvfb and D-Bus session.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"; fi

PACKAGE=inpatient-hub
log() { printf '[installed] %s\n' "$*"; }
die() { printf '[installed] FAILED: %s\n' "$*" >&2; exit 1; }
in_ci() { [[ -n ${CI:-} && ${CI:-} != false && ${CI:-} != 0 ]]; }
skip_or_fail() {
  if in_ci; then die "$1 (CI must test the installed package)"; fi
  log "SKIPPED: $1"
  exit 0
}

[[ $(id -u) -eq 0 ]] || skip_or_fail "not root: installing the .deb needs root"
command -v dpkg >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || skip_or_fail "no dpkg: not a Debian system"
package_state=$(dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null || true)
if [[ -n $package_state && $package_state != *not-installed ]]; then
  # In CI, a package left by an earlier run of this script (one that was killed); anywhere else
  # it may be someone's real installation, and this test never removes that.
  in_ci || skip_or_fail "$PACKAGE is already installed on this machine ($package_state): this test would remove it"
  log "purging $PACKAGE left by an earlier run ($package_state)"
  dpkg -P "$PACKAGE" >/dev/null
fi
TAURI="$ROOT/node_modules/.bin/tauri"
[[ -x $TAURI ]] || die "$TAURI is missing: run scripts/setup.sh (npm ci installs @tauri-apps/cli)"
[[ -n ${DISPLAY:-} ]] || die "no display: run under xvfb-run (scripts/test-all.sh does)"

work=$(mktemp -d "${TMPDIR:-/tmp}/inpatient-hub-installed.XXXXXX")
installed_by_us=0
cleanup() {
  local status=$?
  if ((installed_by_us)); then dpkg -P "$PACKAGE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# A throw-away ward: its own database key (no keychain involved) and its own user data folder,
# which is where the app keeps the ward's data when no --data-dir is given.
export INPATIENT_HUB_DB_KEY=5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
export XDG_DATA_HOME="$work/home/.local/share"
unset INPATIENT_HUB_DATA_DIR
mkdir -p "$XDG_DATA_HOME"
WARD="$XDG_DATA_HOME/inpatienthub" # hub::config's default folder on Linux
DB="$WARD/inpatient-hub.sqlite"

# --- Build -------------------------------------------------------------------------------
# tauri.conf.json's beforeBuildCommand builds hubctl without the simulator; the CLI then builds
# the window with Tauri's production features and packs both.
start=$SECONDS
log "building the release .deb (npx tauri build --bundles deb)"
"$TAURI" build --bundles deb --ci
log "release build and bundle: $((SECONDS - start)) s"
version=$(node -p 'require("./tauri.conf.json").version')
DEB=$(ls -t "$ROOT"/target/release/bundle/deb/*_"${version}"_*.deb | head -n 1)
[[ -f $DEB ]] || die "no .deb for version $version under target/release/bundle/deb"
log "package: $DEB ($(du -k "$DEB" | cut -f1) KiB)"
[[ $(dpkg-deb -f "$DEB" Package) == "$PACKAGE" ]] || die "the package is not called $PACKAGE"

# --- What the package holds ---------------------------------------------------------------
# One path per line (some have spaces), without tar's optional leading "./".
contents=$(dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed 's|^\./||')
for wanted in usr/bin/inpatient-hub usr/bin/hubctl "usr/share/applications/Inpatient Hub.desktop"; do
  grep -qxF "$wanted" <<<"$contents" || die "the package lacks $wanted"
done
# The desktop entry (how staff start the app) runs the installed window.
desktop=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xO --wildcards "*usr/share/applications/Inpatient Hub.desktop")
grep -qx 'Exec=inpatient-hub' <<<"$desktop" || die "the desktop entry does not start inpatient-hub: $desktop"
# Nothing else is a program, and nothing is the simulator or its data.
unexpected=$(grep -E '^usr/(s?bin|lib)/.+[^/]$' <<<"$contents" | grep -vxE 'usr/bin/(inpatient-hub|hubctl)' || true)
[[ -z $unexpected ]] || die "the package holds unexpected programs: $unexpected"
! grep -qiE 'simulat|simctl' <<<"$contents" || die "the package holds simulator files"
outside_usr=$(grep -vE '^(\.?/?|usr(/.*)?)$' <<<"$contents" || true)
[[ -z $outside_usr ]] || die "the package installs files outside /usr: $outside_usr"

# --- Install ------------------------------------------------------------------------------
log "installing $DEB"
installed_by_us=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$DEB" </dev/null >/dev/null
[[ -x /usr/bin/inpatient-hub && -x /usr/bin/hubctl ]] || die "the binaries are not in /usr/bin"

# Release builds leave the simulator out (tests/hubctl_release.rs checks the build; this the
# installed binary) ...
if sim_out=$(/usr/bin/hubctl sim --port 0 2>&1); then die "the installed hubctl ran the simulator: $sim_out"; fi
grep -q "built without the SystmOne simulator" <<<"$sim_out" || die "hubctl sim did not say the simulator is left out: $sim_out"
# ... and devtools: Tauri compiles the inspector in only for debug builds or its `devtools`
# feature (tests/least_privilege.rs checks the configuration), and a debug build is ~20 times
# the size of a release one, so a large binary means a debug build was packed.
app_size=$(stat -c %s /usr/bin/inpatient-hub)
((app_size < 60 * 1024 * 1024)) || die "/usr/bin/inpatient-hub is $app_size bytes: a debug build (with devtools) was packed"
if ldd /usr/bin/hubctl | grep -qiE 'webkit|gtk'; then die "the installed hubctl links GTK or WebKit"; fi

# --- The installed app end to end ---------------------------------------------------------
export INPATIENT_HUB_APP=/usr/bin/inpatient-hub INPATIENT_HUB_HUBCTL=/usr/bin/hubctl
export INPATIENT_HUB_INSTALLED_DATA_DIR="$WARD"
mkdir -p "$WARD"
# The ward's default folder: hubctl with no --data-dir finds the data the window writes there.
/usr/bin/hubctl --json patients list >/dev/null
[[ -f $DB ]] || die "hubctl's default data folder is not $WARD"
INPATIENT_HUB_INSTALLED_PHASE=install node --test --test-reporter=spec tests/e2e-installed/

# --- Upgrade over it ----------------------------------------------------------------------
# The same build with a higher version number: dpkg treats installing it as an upgrade
# (prerm upgrade, unpack over, postinst configure), exactly the path a new release takes.
newer="${version}+upgrade-test"
mkdir "$work/repack"
dpkg-deb -R "$DEB" "$work/repack/tree"
sed -i "s/^Version: .*/Version: $newer/" "$work/repack/tree/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/repack/tree" "$work/repack/newer.deb" >/dev/null
db_before=$(sha256sum "$DB" | cut -d' ' -f1)
log "upgrading to $newer over the installed $version"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$work/repack/newer.deb" </dev/null >/dev/null
[[ $(dpkg-query -W -f='${Version}' "$PACKAGE") == "$newer" ]] || die "the upgrade did not install $newer"
[[ $(sha256sum "$DB" | cut -d' ' -f1) == "$db_before" ]] || die "upgrading changed the ward's database file"
INPATIENT_HUB_INSTALLED_PHASE=upgrade node --test --test-reporter=spec tests/e2e-installed/

# --- Remove, then purge: the ward's data stays --------------------------------------------
# Everything the package owns is under /usr; the data lives in the user's folder. Checked with
# the release hubctl from the build (the package's own copy is gone by then).
release_hubctl="$ROOT/target/release/hubctl"
data_opens() {
  "$release_hubctl" --data-dir "$WARD" --json tasks list | grep -q '"title": "Obs 4-hourly (installed smoke test)"' ||
    die "$1: the ward's data no longer opens with its task"
  "$release_hubctl" --data-dir "$WARD" --json audit verify >/dev/null || die "$1: the audit chain no longer verifies"
}
db_before=$(sha256sum "$DB" | cut -d' ' -f1)
log "removing the package (dpkg -r)"
dpkg -r "$PACKAGE" >/dev/null
[[ ! -e /usr/bin/inpatient-hub && ! -e /usr/bin/hubctl ]] || die "dpkg -r left the binaries"
[[ -f $DB && $(sha256sum "$DB" | cut -d' ' -f1) == "$db_before" ]] || die "dpkg -r touched the ward's database"
data_opens "after dpkg -r"
log "installing again, then purging (dpkg -P)"
dpkg -i "$work/repack/newer.deb" >/dev/null
db_before=$(sha256sum "$DB" | cut -d' ' -f1)
dpkg -P "$PACKAGE" >/dev/null
installed_by_us=0
dpkg-query -W "$PACKAGE" >/dev/null 2>&1 && die "dpkg -P left the package registered"
[[ -f $DB && $(sha256sum "$DB" | cut -d' ' -f1) == "$db_before" ]] || die "dpkg -P touched the ward's database"
data_opens "after dpkg -P"
log "ok: built, installed, used, upgraded, removed and purged; the ward's data survived each step"
