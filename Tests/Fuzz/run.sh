#!/usr/bin/env bash
# Fuzz the IDX reader and the checkpoint reader with libFuzzer + AddressSanitizer: FuzzIDX and
# FuzzCheckpoint take raw files; FuzzCheckpointMetadata edits a real checkpoint's metadata
# (KEY=VALUE and -KEY lines), so consistent edits reach the shape checks and copies. The checkpoint
# targets use checkpoint.dict (the format's keys and values, numbers at the limits).
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
for target in FuzzIDX FuzzCheckpoint FuzzCheckpointMetadata; do
    corpus=../../.build-fuzz/corpus-$target
    mkdir -p "$corpus"
    case $target in
        FuzzIDX) cp corpus/idx/* "$corpus"/; dictionary=(); rate=1000 ;;
        FuzzCheckpoint) cp corpus/checkpoint/* "$corpus"/; dictionary=(-dict=checkpoint.dict); rate=1000 ;;
        # Every input decodes a whole checkpoint (about 1,600 a second on a 2-CPU machine).
        FuzzCheckpointMetadata) cp corpus/metadata/* "$corpus"/; dictionary=(-dict=checkpoint.dict); rate=200 ;;
    esac
    echo "== $target for $seconds s"
    log=../../.build-fuzz/$target.log
    set +e
    "$bin/$target" "$corpus" "${dictionary[@]}" -max_total_time="$seconds" -max_len=4096 -malloc_limit_mb=256 -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix=../../.build-fuzz/findings/ >"$log" 2>&1
    status=$?
    set -e
    grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" "$log" || true
    if [ "$status" -ne 0 ] || ls ../../.build-fuzz/findings/crash-* ../../.build-fuzz/findings/leak-* ../../.build-fuzz/findings/timeout-* ../../.build-fuzz/findings/oom-* >/dev/null 2>&1; then
        echo "$target: libFuzzer exited with status $status; findings, if any, in .build-fuzz/findings; its output in .build-fuzz/$target.log" >&2
        exit 1
    fi
    # A fuzzer that ran but hardly executed anything proves nothing: ask for $rate inputs a second
    # (the 2-CPU machines run 12,000-30,000 raw inputs a second, a tenth of that whole checkpoints).
    executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ -z "$executed" ] || [ "$executed" -lt $((seconds * rate)) ]; then
        echo "$target: only ${executed:-no} executions in $seconds s, fewer than $((seconds * rate)); see .build-fuzz/$target.log" >&2
        exit 1
    fi
done
