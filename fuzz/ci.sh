#!/usr/bin/env bash
# CI-sized fuzzing: every target for FUZZ_SECONDS (default 30) on one core, seeded from the fixtures and the shared
# corpus. Fails on the first crash, hang (10 s) or memory blow-up (2 GiB), and prints the input that caused it.
# About 4 min of build plus 3 min of fuzzing on the 2-core machine. See fuzz/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${FUZZ_SECONDS:-30}"
targets=(source_file decode tcp http2 hpack pipeline)
# Stable Rust with RUSTC_BOOTSTRAP=1: cargo-fuzz passes nightly-only -Z flags (sanitizer coverage).
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/ci.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
./seed.sh >/dev/null
cargo fuzz build -s none
failed=0
for t in "${targets[@]}"; do
    log="$(mktemp)"
    if cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        stats="$(grep -E '^#[0-9]+.*DONE' "$log" | tail -1)"
        echo "fuzz $t: ok ${secs}s ${stats}"
    else
        failed=1
        echo "fuzz $t: FAILED"
        grep -E -A30 'panicked|ERROR: libFuzzer|deadly signal|timeout|out-of-memory' "$log" | head -60
        grep -E 'Test unit written to' "$log" || true
    fi
    rm -f "$log"
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz: crash found; reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/FILE"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
