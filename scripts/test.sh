#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): dependencies, the UI (build,
# type check, tests), then formatting, lints and tests of the whole Cargo
# workspace (crates/*, src-tauri and the root package owning tests/), then the
# end-to-end tests through the real app (scripts/e2e.sh: Xvfb + tauri-driver).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

START=$SECONDS
step_start=$SECONDS
step() {
  local now=$SECONDS
  if [ "$now" -ne "$START" ]; then
    printf '     (%ds)\n' "$((now - step_start))"
  fi
  step_start=$now
  printf '\n==== [%s +%ds] %s ====\n' "$(date +%H:%M:%S)" "$((now - START))" "$*"
}

# No interactive prompts; deterministic, colour-free CI logs.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0
export npm_config_update_notifier=false
export NO_COLOR=1 FORCE_COLOR=0

step "deps: system packages, Rust components, npm ci"
bash scripts/deps.sh

step "ui: build (vite) -> ui/dist, embedded by src-tauri"
(cd ui && npm run build)

step "ui: type check (svelte-check)"
(cd ui && npm run check)

step "ui: unit tests (vitest)"
(cd ui && npm test)

step "rust: cargo fmt --check"
cargo fmt --all -- --check

step "rust: cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "rust: cargo test (workspace, without the end-to-end tests)"
cargo test --workspace --exclude shouhu-e2e --locked

step "e2e: the real app through tauri-driver + WebKitWebDriver under Xvfb"
SHOUHU_E2E_UI_BUILT=1 bash scripts/e2e.sh

step "done"
echo "all checks passed in $((SECONDS - START))s"
