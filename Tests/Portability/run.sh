#!/usr/bin/env bash
# ptrain on an x86-64 CPU without AVX2 and FMA, for real rather than by forcing a variant: the
# release binary runs under QEMU's user-mode emulator as an Intel Nehalem (SSE4.2, no AVX), on
# which any AVX/AVX2/FMA instruction is an illegal instruction. Checks that ptrain
#   1. picks the baseline kernels by itself (`ptrain topology`),
#   2. refuses PTRAIN_KERNELS=avx2 with its one-line error and exit status 1, and
#   3. trains (2 workers, 200 iterations) to the params_sha256 of the same run done natively with
#      PTRAIN_KERNELS=baseline: the same code, so the same bits.
# First it checks that the emulator does trap an AVX2 + FMA instruction, so a pass means something.
# Needs qemu-user-static and a C compiler; about 25 s on 2 cores (mostly the emulated run).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(uname -m)" != x86_64 ]; then echo "portability check: x86-64 hosts only, nothing to do on $(uname -m)"; exit 0; fi
command -v qemu-x86_64-static >/dev/null || { echo "error: qemu-x86_64-static not found; install it with: apt-get install qemu-user-static" >&2; exit 1; }
emulate=(qemu-x86_64-static -cpu Nehalem)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 0. The emulated CPU must refuse AVX2 + FMA (SIGILL is exit status 128 + 4).
printf '#include <immintrin.h>\nint main(int c, char **v) { (void)v; __m256 a = _mm256_set1_ps((float)c); a = _mm256_fmadd_ps(a, a, a); return (int)_mm256_cvtss_f32(a) == 2 ? 0 : 3; }\n' > "$work/avx2.c"
"${CC:-cc}" -O1 -mavx2 -mfma "$work/avx2.c" -o "$work/avx2"
set +e; bash -c '"$@"; exit $?' _ "${emulate[@]}" "$work/avx2" 2>/dev/null; status=$?; set -e  # (a shell of its own, so its "Illegal instruction" report goes to /dev/null)
[ "$status" -eq 132 ] || { echo "error: the emulated Nehalem ran an AVX2/FMA instruction (exit $status, expected 132): this check would prove nothing" >&2; exit 1; }

swift build -c release --product ptrain
ptrain=.build/release/ptrain

# 1. The variant chosen without help.
topology=$("${emulate[@]}" "$ptrain" topology 2>/dev/null)
grep -q '^kernels: baseline' <<<"$topology" || { echo "error: expected the baseline kernels on a CPU without AVX2; topology said:" >&2; echo "$topology" >&2; exit 1; }

# 2. Forcing the AVX2 kernels is a user error, not a crash.
set +e; message=$(PTRAIN_KERNELS=avx2 "${emulate[@]}" "$ptrain" topology 2>&1 >/dev/null); status=$?; set -e
[ "$status" -eq 1 ] && grep -q 'does not support the avx2 kernels' <<<"$message" || {
    echo "error: PTRAIN_KERNELS=avx2 on a CPU without AVX2 should exit 1 with a message; got exit $status: $message" >&2; exit 1; }

# 3. Same bits as the native baseline run.
digest() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["kernels"], d["params_sha256"])'; }
args=(--workers 2 --iterations 200 --json)
native=$(PTRAIN_KERNELS=baseline "$ptrain" "${args[@]}" | digest)
emulated=$("${emulate[@]}" "$ptrain" "${args[@]}" 2>/dev/null | digest)
echo "native, PTRAIN_KERNELS=baseline: $native"
echo "emulated Nehalem, no AVX2/FMA:  $emulated"
[ "$native" = "$emulated" ] || { echo "error: the run on a CPU without AVX2 ended with other bits than the native baseline run" >&2; exit 1; }
echo "portability check passed: baseline kernels chosen, avx2 refused, same bits"
