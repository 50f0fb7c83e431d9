#!/usr/bin/env bash
# The avx512 kernels, executed on an AVX-512 CPU even where the host has none: Linux boots in the
# Bochs emulator as an Intel Skylake-X (AVX-512 F, CD, BW, DQ, VL) with ptrain and its test bundle
# in the initramfs, and the check passes when ptrain there
#   1. picks the avx512 kernels by itself (`ptrain topology`),
#   2. passes the tests that compare each kernel variant with its reference twin or with the other
#      variants (the XCTest selection below, every supported variant in turn, avx512 included), and
#   3. trains each run in `runs` to the same params_sha256 as the same run on this host with
#      PTRAIN_KERNELS=avx2: the contract that avx512 and avx2 give the same bits (docs/kernels.md).
# Emulation is about 100-150x slower than the host, so the runs are short and read a subset of
# MNIST (the first 2,000 training and 500 test images; the bits are compared run for run, not with
# the golden digests of the whole set). About 14 minutes on a 2-core machine, 12 of them emulated.
# With --default-run it runs instead the whole default run (`ptrain --workers 2`: the lecture's net,
# 10,000 iterations, all of MNIST) and nothing else, against the same run on the host: about 32
# minutes, not in CI.
#
# Needs: bochs bochsbios vgabios isolinux syslinux-common xorriso busybox-static cpio python3, and
# apt-get to download Debian's cloud kernel (linux-image-cloud-amd64). The host must run avx2.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(uname -m)" != x86_64 ]; then echo "avx512 emulation check: x86-64 hosts only, nothing to do on $(uname -m)"; exit 0; fi
for tool in bochs-bin xorriso busybox cpio python3 apt-get; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found; install: apt-get install bochs bochsbios vgabios isolinux syslinux-common xorriso busybox-static cpio python3" >&2; exit 1; }
done
for file in /usr/share/bochs/BIOS-bochs-latest /usr/share/vgabios/vgabios.bin /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32; do
    [ -f "$file" ] || { echo "error: $file not found; install: apt-get install bochsbios vgabios isolinux syslinux-common" >&2; exit 1; }
done

case "${1:-}" in
    "") default_run=false ;;
    --default-run) default_run=true ;;
    *) echo "usage: $0 [--default-run]" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The runs, as "name|flags" (each also gets --data, --json and --workers 2 unless it names them):
# the lecture's net on the sparse and the dense input (the 6 x 1-vector tile for its 100 columns),
# the heavy run of issue 23's acceptance, a deep net with odd widths and Adam, and tanh with
# Nesterov momentum, weight decay and a cosine schedule on 3 workers.
runs=(
    "lecture sparse|--input sparse --iterations 100"
    "lecture dense|--input dense --iterations 40"
    "heavy|--hidden 1024 --batch-size 1000 --input dense --iterations 2"
    "deep adam|--hidden 100,37,64 --activation relu --init he --optimizer adam --learning-rate 0.001 --batch-size 64 --input dense --iterations 30"
    "tanh nesterov|--hidden 50 --activation tanh --init glorot --optimizer nesterov --weight-decay 0.0001 --schedule cosine --warmup 5 --input sparse --iterations 30 --workers 3"
)
# The XCTest selection: the suites that run every supported variant against a reference twin or
# against each other, except the float64 sweeps (KernelTests' awkward GEMM shapes, GradientTests'
# backprop), which take seconds natively and would take hours emulated.
tests=(
    PTrainTests.KernelTests/testGEMMAccumulates
    PTrainTests.KernelTests/testGEMMBitsDoNotDependOnVectorWidthOrBlocking
    PTrainTests.KernelTests/testGEMMRowsAreBitwiseIndependentOfSlicing
    PTrainTests.KernelTests/testGEMMTransposedAndColumnSlicesChangeNoBit
    PTrainTests.KernelTests/testExpRelativeError
    PTrainTests.KernelTests/testSoftmaxCrossEntropyMatchesReference
    PTrainTests.KernelTests/testNormalizePixelsMatchesReferenceBitwise
    PTrainTests.KernelTests/testSGDStepsMatchReferenceBitwise
    PTrainTests.KernelTests/testVariantsAreTriedWidestFirstAndAVX512RoundsLikeAVX2
    PTrainTests.LayerTests
    PTrainTests.ReducerTests
    PTrainTests.OptimizerTests/testUpdateKernelsEqualTheScalarFormulasBitwise
    PTrainTests.SparseTests/testSparseGradientEqualsDenseBitwise
    PTrainTests.SparseTests/testSparseRowTimesMatrixEqualsDenseGEMMBitwise
    PTrainTests.SparseTests/testSparseScatterEqualsDenseGEMMBitwise
    PTrainTests.SparseTests/testKBlocksThatSplitAParameterItemKeepTheBits
)

if $default_run; then runs=("default run|"); tests=(); fi

swift build -c release --build-tests
bin=$(swift build -c release --show-bin-path)
ptrain="$bin/ptrain" bundle="$bin/ptrainPackageTests.xctest"
PTRAIN_KERNELS=avx2 "$ptrain" topology >/dev/null 2>&1 \
    || { echo "error: this host cannot run the avx2 kernels, which the emulated avx512 runs are compared with" >&2; exit 1; }

# The MNIST subset, in MNIST's own file format (IDX, gzipped); all of it for --default-run.
mkdir -p "$work/data"
if $default_run; then cp "$bin"/ptrain_Dataset.resources/MNIST/*.gz "$work/data/"; else
python3 - "$bin/ptrain_Dataset.resources/MNIST" "$work/data" <<'PY'
import gzip, struct, sys
source, target = sys.argv[1:]
for stem, count in [("train-images-idx3-ubyte", 2000), ("train-labels-idx1-ubyte", 2000),
                    ("t10k-images-idx3-ubyte", 500), ("t10k-labels-idx1-ubyte", 500)]:
    data = gzip.open(f"{source}/{stem}.gz").read()
    dims = data[3]
    shape = list(struct.unpack(f">{dims}I", data[4:4 + 4 * dims]))
    record = 1
    for d in shape[1:]: record *= d
    body = data[4 + 4 * dims:][:count * record]
    with gzip.open(f"{target}/{stem}.gz", "wb") as out:
        out.write(data[:4] + struct.pack(f">{dims}I", count, *shape[1:]) + body)
PY
fi

# The guest: busybox, ptrain, the test bundle, every shared library they load, the data.
root="$work/root"
mkdir -p "$root"/{bin,proc,sys,dev,tmp,ptrain}
cp "$(command -v busybox)" "$root/bin/"
for applet in sh mount poweroff sed cat sleep; do ln -s busybox "$root/bin/$applet"; done
cp "$ptrain" "$bundle" "$root/ptrain/"
cp -r "$bin/ptrain_Dataset.resources" "$root/ptrain/"
cp -r "$work/data" "$root/data"
for library in $(ldd "$ptrain" "$bundle" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
done
# Each run prints "RESULT <name>|<kernels> <params_sha256>"; the test bundle's exit status is
# printed too, since its summary line alone would not show a crash.
flags() { local f="$2 --data $1 --json"; [[ "$f" == *--workers* ]] || f="$f --workers 2"; echo "$f"; }
{
    echo '#!/bin/sh'
    echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
    echo 'cd /ptrain'
    echo 'echo "TOPOLOGY $(./ptrain topology | sed -n "s/^kernels: \([a-z0-9]*\).*/\1/p")"'
    for run in "${runs[@]}"; do
        echo "./ptrain $(flags /data "${run#*|}") > /tmp/out 2> /tmp/err || cat /tmp/err"
        echo "echo \"RESULT ${run%%|*}|\$(sed -n 's/.*\"kernels\":\"\([a-z0-9]*\)\".*/\1/p' /tmp/out) \$(sed -n 's/.*\"params_sha256\":\"\([0-9a-f]*\)\".*/\1/p' /tmp/out)\""
    done
    if [ ${#tests[@]} -gt 0 ]; then
        echo "./ptrainPackageTests.xctest $(IFS=,; echo "${tests[*]}") > /tmp/xctest 2>&1; status=\$?"
        echo "sed -n '/Test Case.*failed\|error:\|Executed/p' /tmp/xctest"
        echo 'echo "XCTEST-EXIT $status"'
    fi
    echo 'echo "GUEST-DONE"'
    echo 'sleep 2  # the serial port drains before the power goes'
    echo 'poweroff -f'
} > "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 > "$work/initrd.img")

# A kernel that Debian builds for virtual machines (no modules needed: the initramfs holds
# everything), booted by ISOLINUX from a CD image. clearcpuid=xsavec,xsaves: Bochs 2.7 reports the
# standard XSAVE area's size where Linux expects the compacted one, and Linux then turns XSAVE, and
# with it AVX, off; without XSAVEC and XSAVES Linux uses the standard format, whose size matches.
package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
(cd "$work" && [ -n "$package" ] && apt-get download -qq "$package" 2>/dev/null) \
    || { echo "error: could not download Debian's cloud kernel (linux-image-cloud-amd64 -> '$package'); run apt-get update first" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
mkdir -p "$work/iso"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$work/iso/"
cp "$work"/kernel/boot/vmlinuz-* "$work/iso/vmlinuz"
cp "$work/initrd.img" "$work/iso/"
cat > "$work/iso/isolinux.cfg" <<'EOF'
DEFAULT linux
PROMPT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.img console=ttyS0,115200 quiet panic=-1 tsc=reliable no_timer_check mitigations=off clearcpuid=xsavec,xsaves
EOF
xorriso -as mkisofs -quiet -o "$work/boot.iso" -b isolinux.bin -c boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table "$work/iso"

# Bochs with no display (its RFB server, which waits for no client), the serial port to a file.
cat > "$work/bochsrc" <<EOF
display_library: rfb, options="timeout=0"
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
megs: 2048
cpu: model=corei7_skylake_x
ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$work/serial.txt
clock: sync=none
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
log: /dev/null
panic: action=fatal
EOF
# The reference runs, on this host with the avx2 kernels.
declare -A expected
for run in "${runs[@]}"; do
    # shellcheck disable=SC2046
    expected[${run%%|*}]=$(PTRAIN_KERNELS=avx2 "$ptrain" $(flags "$work/data" "${run#*|}") 2>/dev/null \
        | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["kernels"], d["params_sha256"])')
done

# Debian's Bochs is built with its debugger, which stops before the first instruction: "c" continues.
# The guest powers off after its last command; a crash that keeps it up ends at the time limit.
started=$(date +%s)
echo c | timeout "$($default_run && echo 90m || echo 40m)" bochs-bin -q -f "$work/bochsrc" >"$work/bochs.out" 2>&1 || true
echo "emulated Skylake-X: $(( $(date +%s) - started )) s"
serial=$(tr -d '\r' < "$work/serial.txt" 2>/dev/null || true)
grep -q '^GUEST-DONE' <<<"$serial" || {
    echo "error: the guest did not finish; its console said:" >&2; tail -40 <<<"$serial" >&2
    echo "and Bochs said:" >&2; grep -v 'loaded plugin\|lt_dlhandle' "$work/bochs.out" | tail -20 >&2; exit 1; }

failed=0
topology=$(sed -n 's/^TOPOLOGY //p' <<<"$serial")
echo "ptrain topology on the emulated Skylake-X: kernels $topology"
[ "$topology" = avx512 ] || { echo "error: expected the avx512 kernels on an AVX-512 CPU" >&2; failed=1; }
for run in "${runs[@]}"; do
    name=${run%%|*}
    got=$(sed -n "s/^RESULT $name|//p" <<<"$serial")
    echo "$name: emulated $got, host ${expected[$name]}"
    [ "${got% *}" = avx512 ] && [ "${got#* }" = "${expected[$name]#* }" ] && [ -n "${got#* }" ] || {
        echo "error: $name: the avx512 run on the emulated CPU did not end with the host's avx2 bits" >&2; failed=1; }
done
if [ ${#tests[@]} -gt 0 ]; then
    sed -n '/Test Case.*failed\|error:\|Executed/p' <<<"$serial" | sed 's/^/xctest: /'
    grep -q '^XCTEST-EXIT 0$' <<<"$serial" || { echo "error: the kernel tests failed on the emulated CPU" >&2; failed=1; }
fi
[ "$failed" -eq 0 ] || exit 1
echo "avx512 emulation check passed: avx512 chosen,$([ ${#tests[@]} -gt 0 ] && echo " kernel tests pass,") same bits as avx2 in every run"
