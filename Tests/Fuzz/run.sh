#!/usr/bin/env bash
# Fuzz the IDX reader and the checkpoint reader with libFuzzer + AddressSanitizer.
# Usage: Tests/Fuzz/run.sh [seconds per target, default 60]
# Limits: -malloc_limit_mb=256 flags any single allocation a <= 4 KB input cannot justify;
# -rss_limit_mb=2048; -timeout=10 s per input flags hangs. A finding leaves crash-* files in
# .build-fuzz/findings and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
swift build -c release --scratch-path ../../.build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld >/dev/null
bin=$(swift build -c release --scratch-path ../../.build-fuzz --show-bin-path -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld)
mkdir -p ../../.build-fuzz/findings
for target in FuzzIDX FuzzCheckpoint; do
    corpus=../../.build-fuzz/corpus-$target
    mkdir -p "$corpus"
    case $target in
        FuzzIDX) cp corpus/idx/* "$corpus"/ ;;
        FuzzCheckpoint) cp corpus/checkpoint/* "$corpus"/ ;;
    esac
    echo "== $target for $seconds s"
    "$bin/$target" "$corpus" -max_total_time="$seconds" -max_len=4096 -malloc_limit_mb=256 -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix=../../.build-fuzz/findings/ 2>&1 \
        | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true
    if ls ../../.build-fuzz/findings/crash-* ../../.build-fuzz/findings/leak-* ../../.build-fuzz/findings/timeout-* ../../.build-fuzz/findings/oom-* >/dev/null 2>&1; then
        echo "$target: findings in .build-fuzz/findings" >&2
        exit 1
    fi
done
