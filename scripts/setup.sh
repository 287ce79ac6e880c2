#!/usr/bin/env bash
# Installs everything Inpatient Hub needs to build, run and test on Debian 12, then fetches
# the pinned front-end packages and vendors nhsuk-frontend into ui/ (which Tauri embeds at
# compile time, so this must run before `cargo build`). Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Rust installed by rustup lives here; a non-login shell (CI) may not have it on PATH yet.
if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"; fi

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# WebKitGTK/GTK for the window, Xvfb + WebKitWebDriver for the end-to-end tests, mold to link the
# large debug binaries quickly (.cargo/config.toml asks for it), D-Bus + gnome-keyring for the OS keychain,
# perl (with make from build-essential) for the vendored OpenSSL that SQLCipher is built against.
APT_PACKAGES=(
  build-essential pkg-config perl libssl-dev libwebkit2gtk-4.1-dev librsvg2-dev
  xvfb xauth webkit2gtk-driver dbus-x11
  mold libdbus-1-dev gnome-keyring
)

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
      SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
      SUDO=(sudo)
    else
      die "these Debian packages are missing and you are not root (and there is no sudo): ${missing[*]}"
    fi
    log "installing Debian packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
  else
    log "Debian packages: all present"
  fi
else
  log "not a Debian system: install the equivalents of ${APT_PACKAGES[*]} yourself"
fi

# The toolchains themselves come with the machine (rustup's Rust, Node.js 20+ with npm).
command -v cargo >/dev/null 2>&1 || die "cargo is not installed (install Rust with rustup: https://rustup.rs)"
command -v node >/dev/null 2>&1 || die "Node.js is not installed (Node.js 20 or newer is needed)"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js $(node --version) is too old: nhsuk-frontend and selenium-webdriver need 20 or newer"

# CI checks formatting and lints; rustup's default profile has both components.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  log "adding rustfmt and clippy (rustup components)"
  rustup component add rustfmt clippy || die "cargo fmt and cargo clippy are needed: rustup component add rustfmt clippy"
fi

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -x "$CARGO_BIN/tauri-driver" ]] || command -v tauri-driver >/dev/null 2>&1; then
  log "tauri-driver: present"
else
  log "installing tauri-driver 2.1.0 (cargo install, about a minute)"
  cargo install tauri-driver --version 2.1.0 --locked --quiet
fi

# `npm ci` wipes and reinstalls node_modules; skip it when the tree was installed from this exact lock file.
LOCK_STAMP=node_modules/.inpatient-hub-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $LOCK_STAMP && $(cat "$LOCK_STAMP") == "$lock_sum" ]]; then
  log "node_modules: installed from the current package-lock.json"
else
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" >"$LOCK_STAMP"
fi

# Re-vendoring touches ui/vendor, which makes Cargo re-embed the UI; only do it when it changed.
nhsuk_version=$(node -p 'require("./node_modules/nhsuk-frontend/package.json").version')
if cmp -s "node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend-$nhsuk_version.min.css" ui/vendor/nhsuk/nhsuk-frontend.min.css \
   && cmp -s "node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend-$nhsuk_version.min.js" ui/vendor/nhsuk/nhsuk-frontend.min.js \
   && [[ -d ui/vendor/nhsuk/assets ]]; then
  log "ui/vendor/nhsuk: nhsuk-frontend $nhsuk_version already vendored"
else
  npm run --silent vendor
fi
log "done"
