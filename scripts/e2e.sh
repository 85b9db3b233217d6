#!/usr/bin/env bash
# End-to-end tests through the real built app (crates/e2e): builds the UI and
# the app binary, installs tauri-driver into target/e2e-tools, then runs
# `cargo test -p shouhu-e2e`, which starts its own Xvfb (1366x768), D-Bus
# session bus and tauri-driver -> WebKitWebDriver for each test.
# Screenshots of the main screens land in target/e2e-screens/ (or
# $SHOUHU_E2E_SCREENS).
#   scripts/e2e.sh              the test targets wired into CI (E2E_TESTS below)
#   scripts/e2e.sh <filter>     only tests whose name contains <filter>
# SHOUHU_E2E_TESTS="smoke scenarios close_window" chooses the test targets (crates/e2e/tests/*.rs).
# SHOUHU_E2E_UI_BUILT=1 skips deps.sh and the UI build (scripts/test.sh has
# just done both); SHOUHU_E2E_KEEP=1 keeps each test's temporary folder (logs).
set -euo pipefail

# The test targets CI runs: `smoke` (the app starts, home screen in Chinese)
# and `scenarios` (the issue's: a new child with a bad ID number, pinyin
# initials, a visit draft after closing the window, English, every main
# screen) and `close_window` (keystrokes typed right before the window
# closes are kept) and `accounts` (first set-up, lock with a form being
# typed, wrong password in Chinese, log-in again keeping the typed text)
# and `conflicts` (a real county server and a second device through the
# `shouhu` CLI: a conflict from real sync reviewed and resolved in the app)
# and `household_print` (the printable card, a household edited and a
# sibling added).
E2E_TESTS=(${SHOUHU_E2E_TESTS:-smoke scenarios close_window accounts conflicts household_print})

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TAURI_DRIVER_VERSION="2.1.0"
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
tools="$target_dir/e2e-tools"

if [ "${SHOUHU_E2E_UI_BUILT:-}" != "1" ]; then
  bash scripts/deps.sh
  echo "==== e2e: ui build"
  (cd ui && npm run build)
fi
# A debug build: tauri.conf.json has no devUrl, so it serves the UI embedded
# from ui/dist like a release build, and builds much faster.
# The county server and the CLI are the `conflicts` test's server and second device.
echo "==== e2e: cargo build -p shouhu-app -p shouhu-server -p shouhu-cli"
cargo build -p shouhu-app -p shouhu-server -p shouhu-cli --locked

if [ -x "$tools/bin/tauri-driver" ] && "$tools/bin/tauri-driver" --help >/dev/null 2>&1 \
  && grep -qs "tauri-driver $TAURI_DRIVER_VERSION" "$tools/.crates.toml"; then
  echo "==== e2e: tauri-driver $TAURI_DRIVER_VERSION present in $tools"
else
  echo "==== e2e: cargo install tauri-driver $TAURI_DRIVER_VERSION -> $tools"
  cargo install tauri-driver --version "$TAURI_DRIVER_VERSION" --locked --root "$tools"
fi

export SHOUHU_E2E_APP="${SHOUHU_E2E_APP:-$target_dir/debug/shouhu-app}"
export SHOUHU_E2E_TAURI_DRIVER="$tools/bin/tauri-driver"
export SHOUHU_E2E_SCREENS="${SHOUHU_E2E_SCREENS:-$target_dir/e2e-screens}"
mkdir -p "$SHOUHU_E2E_SCREENS"
rm -f "$SHOUHU_E2E_SCREENS"/*.png

echo "==== e2e: cargo test -p shouhu-e2e (app: $SHOUHU_E2E_APP)"
# One test at a time: each runs a whole app (WebKit) on a 2-core machine.
test_args=(--lib)
for t in "${E2E_TESTS[@]}"; do
  test_args+=(--test "$t")
done
cargo test -p shouhu-e2e --locked "${test_args[@]}" -- --test-threads=1 ${1:+"$1"}

echo "e2e: screenshots in $SHOUHU_E2E_SCREENS:"
ls -1 "$SHOUHU_E2E_SCREENS"
