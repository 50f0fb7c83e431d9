#!/usr/bin/env bash
# The instruction-set modules (KernelsAVX2: haswell, KernelsAVX512: skylake-avx512) specialize the
# same generic kernels for different CPUs. A symbol both objects define is one copy after linking,
# whichever the linker keeps, so none may hold AVX-512 (EVEX) instructions: the AVX2 table could
# run them on a CPU without AVX-512. Each module's own fused-multiply-add type keeps the kernels'
# symbols apart (docs/kernels.md); this checks what remains shared (stdlib helpers) after a
# release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
objects=$(swift build -c release --show-bin-path)
avx2="$objects/KernelsAVX2.build/AVX2Kernels.swift.o"
avx512="$objects/KernelsAVX512.build/AVX512Kernels.swift.o"
for o in "$avx2" "$avx512"; do [ -f "$o" ] || { echo "error: $o not found; run swift build -c release first" >&2; exit 1; }; done
defined() { nm --defined-only "$1" | awk '$2 ~ /^[TtWwVv]$/ {print $3}' | sort -u; }
shared=$(comm -12 <(defined "$avx2") <(defined "$avx512"))
bad=0
for symbol in $shared; do
    if objdump -d --no-show-raw-insn --disassemble="$symbol" "$avx512" | grep -Eq '%zmm|%k[1-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])'; then
        echo "error: $symbol is defined in both ISA modules and its AVX-512 copy uses AVX-512 instructions" >&2
        bad=1
    fi
done
echo "symbols shared by the AVX2 and AVX-512 objects: $(echo "$shared" | grep -c . || true), none with AVX-512 instructions"
exit $bad
