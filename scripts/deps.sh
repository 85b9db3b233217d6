#!/usr/bin/env bash
# Installs everything this repo needs on a Debian 12 machine: the system
# libraries Tauri/WebKitGTK builds against, Xvfb and CJK fonts to run the app
# headless, the Rust lint components, and the UI's npm packages.
# Idempotent: a second run installs nothing (apt is skipped when every package
# is present; `npm ci` is skipped when ui/node_modules matches the lock file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PACKAGES=(
  build-essential pkg-config curl file ca-certificates
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev librsvg2-dev
  libayatana-appindicator3-dev libssl-dev
  xvfb xauth dbus-daemon webkit2gtk-driver fonts-noto-cjk
  # xwininfo: the e2e test of the printable card sees the print dialog open.
  x11-utils
)
NODE_MIN="20.19.0"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi

# --- Debian packages -------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "deps: all ${#APT_PACKAGES[@]} Debian packages present"
fi

# --- Rust ------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
# (rustup installs proxies for rustfmt/clippy even without the components, so
# ask the tools themselves.)
if ! cargo fmt --version >/dev/null 2>&1; then
  echo "deps: rustup component add rustfmt"
  rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1; then
  echo "deps: rustup component add clippy"
  rustup component add clippy
fi
echo "deps: $(cargo --version), $(cargo fmt --version), $(cargo clippy --version)"

# --- Node.js and the UI's packages ----------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "deps: Node.js >= $NODE_MIN with npm is required (Debian 12's nodejs is too old)" >&2
  exit 1
fi
node_version="$(node --version | sed 's/^v//')"
if [ "$(printf '%s\n%s\n' "$NODE_MIN" "$node_version" | sort -V | head -n1)" != "$NODE_MIN" ]; then
  echo "deps: Node.js $node_version is too old; the UI toolchain needs >= $NODE_MIN" >&2
  exit 1
fi

cd "$ROOT/ui"
stamp="node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ]; then
  echo "deps: ui/node_modules up to date (node $node_version, npm $(npm --version))"
else
  echo "deps: npm ci in ui/ (node $node_version, npm $(npm --version))"
  npm ci --no-audit --no-fund
fi
