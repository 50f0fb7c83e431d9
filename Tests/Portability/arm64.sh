#!/usr/bin/env bash
# ptrain on arm64, on an x86-64 Debian host without an arm64 machine: an arm64 Debian (trixie, whose
# `swiftlang` package is Swift 6.0.3) in a folder, run through QEMU's user-mode emulator, builds the
# committed tree (HEAD) and trains. Checks that ptrain
#   1. picks the baseline kernels (NEON with fused multiply-add) by itself, and
#   2. trains (2 workers, --iterations N, default 200) to the params_sha256 of the same run done
#      natively with the avx2 kernels: both variants multiply-add fused, in the same order, and
#      ptrain's exp is its own polynomial, so the bits agree (observed; docs/reproducibility.md).
# Then, with --tests, it runs the kernel, sparse, gradient, reducer, loader and training suites there.
#
# Not part of CI: the first run downloads about 700 MB and takes 30-45 minutes on 2 cores (the
# emulated compiler builds ptrain in about 15 minutes); later runs reuse the folder.
# Needs root (chroot, binfmt_misc), the Debian mirror, and the host's Swift package mirror.
# Usage: Tests/Portability/arm64.sh [--root DIR] [--iterations N] [--tests]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=/var/tmp/ptrain-arm64 iterations=200 tests=0
while [ $# -gt 0 ]; do
    case $1 in
        --root) root=$2; shift 2 ;;
        --iterations) iterations=$2; shift 2 ;;
        --tests) tests=1; shift ;;
        *) echo "usage: $0 [--root DIR] [--iterations N] [--tests]" >&2; exit 64 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "error: needs root (chroot and binfmt_misc)" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "error: this script emulates arm64 on an x86-64 host" >&2; exit 1; }

# The emulator, registered so that the chroot's arm64 programs run (and their children).
command -v qemu-aarch64-static >/dev/null || apt-get install -y -qq qemu-user-static binfmt-support debootstrap >/dev/null
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

# An arm64 Debian with Swift and the libraries ptrain links.
if [ ! -x "$root/usr/bin/swift" ]; then
    [ -d "$root/usr" ] || debootstrap --arch=arm64 --variant=minbase --include=ca-certificates trixie "$root" http://deb.debian.org/debian
    echo 'deb http://deb.debian.org/debian trixie main' > "$root/etc/apt/sources.list"
    chroot "$root" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swiftlang libnuma-dev zlib1g-dev libssl-dev pkg-config git' >/dev/null
fi
for fs in proc dev; do mountpoint -q "$root/$fs" || mount --bind "/$fs" "$root/$fs"; done
# swift-argument-parser from the host's package mirror, as on the host (git's url.insteadOf).
mkdir -p "$root/opt/swift-packages"
mountpoint -q "$root/opt/swift-packages" || mount --bind /opt/swift-packages "$root/opt/swift-packages"
printf '[url "/opt/swift-packages/"]\n\tinsteadOf = https://github.com/\n[safe]\n\tdirectory = *\n' > "$root/root/.gitconfig"

# The committed tree (HEAD), built there; a later run updates the same clone and builds incrementally.
if [ -d "$root/root/ptrain/.git" ]; then
    git -C "$root/root/ptrain" fetch -q "$PWD" HEAD && git -C "$root/root/ptrain" checkout -q --force FETCH_HEAD
else
    git clone -q "$PWD" "$root/root/ptrain"
fi
inside() { chroot "$root" /bin/bash -c "set -o pipefail; cd /root/ptrain && export HOME=/root && $1"; }
inside 'swift --version 2>&1 | head -1'
inside 'swift build -c release --product ptrain 2>&1 | tail -1'

kernels=$(inside '.build/release/ptrain topology' | grep '^kernels:')
echo "arm64 $kernels"
grep -q '^kernels: baseline (NEON' <<<"$kernels" || { echo "error: expected the NEON baseline kernels on arm64" >&2; exit 1; }

digest() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["kernels"], d["params_sha256"], d["test_accuracy"])'; }
args="--workers 2 --iterations $iterations --json"
swift build -c release --product ptrain >/dev/null  # this tree, as the chroot built it (never a stale binary)
native=$(.build/release/ptrain $args | digest)
emulated=$(inside ".build/release/ptrain $args" | digest)
echo "x86-64 (native):  $native"
echo "arm64 (emulated): $emulated"
if [ "${native%% *}" = avx2 ]; then
    [ "${native#* }" = "${emulated#* }" ] || { echo "error: arm64 ended with other bits than this machine's $native" >&2; exit 1; }
else
    echo "note: this host ran the ${native%% *} kernels (separate multiply and add); arm64's bits match only the avx2 ones, so they were not compared"
fi

if [ "$tests" -eq 1 ]; then
    inside 'swift build -c release --build-tests 2>&1 | tail -1'
    inside 'swift test -c release --skip-build --filter "KernelTests|SparseTests|GradientTests|ReducerTests|PhiloxTests|LoaderTests|TrainingTests" 2>&1 | tail -3'
fi
echo "arm64 check passed"
