#!/usr/bin/env bash
# The contract across processes with real Open MPI ranks (issue 24; docs/reproducibility.md,
# "Across processes"). Builds ptrain with the MPI trait and checks that
#   1. mpirun -n R ptrain --workers T gives the digest of the build without MPI at --workers 1, for
#      (R, T) in (1,1) (2,1) (3,1) (2,2) (4,2) -- R x T up to 8 on this 2-core machine -- for the
#      lecture net and for a 784-128-64-10 ReLU net with Adam;
#   2. a stop (SIGUSR1 to mpirun, which passes it on: exit 75; and SIGINT, which mpirun answers
#      with SIGTERM to every rank) leaves a checkpoint that, resumed with another R and T, gives
#      the uninterrupted digest;
#   3. SIGKILL of one rank makes mpirun exit non-zero within 15 s, and the last checkpoint loads;
#   4. the TCP transport (--mca btl tcp,self over loopback) gives the same digest;
#   5. ranks with different kernel variants or training sets are refused before training, in one
#      line from rank 0 naming what differs.
# Needs libopenmpi-dev and openmpi-bin; about 3 minutes on 2 cores after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v mpirun >/dev/null || { echo "error: mpirun not found; install it with: apt-get install openmpi-bin libopenmpi-dev" >&2; exit 1; }
# Containers run as root, and have fewer cores than ranks; some refuse cross-memory attach.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpirun --oversubscribe --bind-to none)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

swift build -c release --product ptrain
swift build -c release --product ptrain --traits MPI --scratch-path .build-mpi
plain=.build/release/ptrain
ptrain=.build-mpi/release/ptrain
digest() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["params_sha256"])'; }
fail() { echo "FAIL: $*" >&2; exit 1; }

lecture=(--iterations 2000)
deep=(--hidden 128,64 --activation relu --init he --optimizer adam --learning-rate 0.001 --iterations 2000)
for net in lecture deep; do
    declare -n args=$net
    expected=$("$plain" "${args[@]}" --json | digest)
    echo "$net: without MPI, 1 worker: $expected"
    for rt in "1 1" "2 1" "3 1" "2 2" "4 2"; do
        set -- $rt
        got=$("${mpi[@]}" -n "$1" "$ptrain" --workers "$2" "${args[@]}" --json | digest)
        echo "$net: R=$1 T=$2: $got"
        [ "$got" = "$expected" ] || fail "$net with R=$1 T=$2 gave another digest"
    done
done

# 2. Stop and resume with another R and T. 20,000 iterations take about 15 s, so the signal
# after 3 s always arrives mid-run.
long=(--hidden 128,64 --activation relu --init he --optimizer adam --learning-rate 0.001 --iterations 20000)
expected=$("$plain" "${long[@]}" --workers 2 --json | digest)
for signal in USR1 INT; do
    rm -f "$work/stop.safetensors"
    "${mpi[@]}" -n 3 "$ptrain" "${long[@]}" --checkpoint "$work/stop.safetensors" > "$work/stop.out" 2>&1 &
    job=$!
    sleep 3
    kill -"$signal" "$job"
    set +e; wait "$job"; status=$?; set -e
    if [ "$signal" = USR1 ]; then [ "$status" -eq 75 ] || fail "SIGUSR1: mpirun exited $status, expected 75"; fi
    [ "$status" -ne 0 ] || fail "SIGINT: mpirun exited 0"
    [ -f "$work/stop.safetensors" ] || { cat "$work/stop.out"; fail "SIG$signal: no checkpoint"; }
    got=$("${mpi[@]}" -n 2 "$ptrain" --workers 2 "${long[@]}" --resume "$work/stop.safetensors" --json | digest)
    echo "SIG$signal to mpirun (exit $status), resumed with R=2 T=2: $got"
    [ "$got" = "$expected" ] || fail "the run stopped by SIG$signal and resumed gave another digest"
done

# 3. A rank killed: no hang, and the periodic checkpoint stays whole.
rm -f "$work/kill.safetensors"
"${mpi[@]}" -n 3 "$ptrain" "${long[@]}" --checkpoint "$work/kill.safetensors" --checkpoint-every 100 > "$work/kill.out" 2>&1 &
job=$!
sleep 3
victim=$(pgrep -P "$job" -f "$ptrain" | sed -n 2p || true)
[ -n "$victim" ] || victim=$(pgrep -f "$ptrain ${long[*]}" | sed -n 2p)
start=$(date +%s)
kill -KILL "$victim"
set +e; timeout 60 bash -c "while kill -0 $job 2>/dev/null; do sleep 0.2; done"; wait "$job"; status=$?; set -e
seconds=$(( $(date +%s) - start ))
echo "SIGKILL to rank pid $victim: mpirun exited $status after ${seconds} s"
[ "$status" -ne 0 ] || fail "mpirun exited 0 after a rank was killed"
[ "$seconds" -le 15 ] || fail "mpirun took ${seconds} s to end the job"
"$plain" eval --checkpoint "$work/kill.safetensors" > /dev/null || fail "the checkpoint left by the killed job does not load"

# 4. TCP over loopback instead of shared memory.
expected=$("$plain" "${lecture[@]}" --json | digest)
got=$("${mpi[@]}" --mca btl tcp,self --mca btl_tcp_if_include lo -n 2 "$ptrain" "${lecture[@]}" --json | digest)
echo "lecture over TCP loopback, R=2: $got"
[ "$got" = "$expected" ] || fail "TCP transport gave another digest"
# 5. Ranks that would compute with other rounding or other data. mpirun interleaves its own
# banner with the ranks' forwarded stderr, even inside a line, so rank 0's message is read from the
# file --output-filename gives it.
refused() {  # refused NAME MPIRUN-ARGS...: sets status to mpirun's and out to rank 0's stderr
    local name=$1; shift
    set +e
    mpirun --bind-to none --oversubscribe --output-filename "$work/$name" "$@" > "$work/$name.out" 2>&1
    status=$?
    set -e
    out=$(cat "$work/$name/1/rank.0/stderr" 2>/dev/null || true)
}
if grep -q avx2 /proc/cpuinfo; then
    refused kernels -n 1 -x PTRAIN_KERNELS=avx2 "$ptrain" --iterations 10 : -n 1 -x PTRAIN_KERNELS=baseline "$ptrain" --iterations 10
    [ "$status" -ne 0 ] || fail "ranks with avx2 and baseline kernels were not refused"
    grep -q "the ranks differ in their kernels' rounding (rank 0: avx2; rank 1: baseline)" <<< "$out" || fail "no kernel-variant message from rank 0: $out"
    echo "ranks with other kernel variants: refused (mpirun exit $status)"
fi
mkdir -p "$work/other-data"
cp Sources/Dataset/Resources/MNIST/*.gz "$work/other-data/"
cp Sources/Dataset/Resources/MNIST/t10k-images-idx3-ubyte.gz "$work/other-data/train-images-idx3-ubyte.gz"
cp Sources/Dataset/Resources/MNIST/t10k-labels-idx1-ubyte.gz "$work/other-data/train-labels-idx1-ubyte.gz"
refused data -n 1 "$ptrain" --iterations 10 : -n 1 "$ptrain" --iterations 10 --data "$work/other-data"
[ "$status" -ne 0 ] || fail "ranks with other training sets were not refused"
grep -q "the ranks differ in their training set" <<< "$out" || fail "no training-set message from rank 0: $out"
echo "ranks with other training sets: refused (mpirun exit $status)"
echo "MPI checks passed"
