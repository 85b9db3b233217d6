#!/usr/bin/env bash
# Builds the UI and starts the desktop app.
#   scripts/run.sh            debug build
#   scripts/run.sh --release  optimised production build (custom-protocol)
# Without a display ($DISPLAY and $WAYLAND_DISPLAY empty) the window opens in
# Xvfb (1366x768), e.g. for screenshots: `DISPLAY=:99 import -window root x.png`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo_flags=()
profile=debug
if [ "${1:-}" = "--release" ]; then
  cargo_flags=(--release --features custom-protocol)
  profile=release
fi

bash scripts/deps.sh

echo "==== ui: npm run build"
(cd ui && npm run build)

echo "==== app: cargo build ($profile)"
cargo build -p shouhu-app "${cargo_flags[@]}"

target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
app="$target_dir/$profile/shouhu-app"

echo "==== app: start $app"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "(no display: running under Xvfb)"
  # The single-instance plugin needs a D-Bus session bus on Linux; a bare Xvfb has none.
  if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v dbus-run-session >/dev/null 2>&1; then
    exec xvfb-run -a -s "-screen 0 1366x768x24" dbus-run-session -- "$app"
  fi
  exec xvfb-run -a -s "-screen 0 1366x768x24" "$app"
fi
exec "$app"
