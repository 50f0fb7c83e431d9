#!/usr/bin/env python3
"""Rank scaling of ptrain's MPI build, measured on this machine and projected to a cluster.

Runs, in alternating rounds, three workloads (the lecture net, the heavy run, a deep ReLU net with
Adam) as one process with 1 and 2 workers and as 2 ranks of 1 worker through shared memory and
through TCP over loopback; times MPI_Allgatherv (Benchmarks/reference/allgather_time.c) on both
transports and fits latency + bytes/bandwidth to it; and projects the time per iteration for 2 to
64 nodes (one rank per node) on 10 and 100 Gbit/s links. Writes Benchmarks/results/ranks.json and
prints the tables docs/scaling.md shows.

    swift build -c release --traits MPI --scratch-path .build-mpi
    python3 Benchmarks/ranks.py [--rounds 3]

Model (docs/scaling.md): an iteration on N ranks takes compute/N + two allgathers, the rows
(B x floats per row x 4 bytes in all) and the parameters (P x 4 bytes); a ring allgather of T bytes
among N ranks costs (N - 1)*alpha + (N - 1)/N * T / beta. The compute is the measured 1-process,
1-worker time per iteration of the same workload; ptrain does not overlap the exchanges with
computation, so they add.
"""
import argparse, datetime, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = {
    "lecture": ["--iterations", "2000"],
    "heavy": ["--hidden", "1024", "--batch-size", "1000", "--input", "dense", "--iterations", "30"],
    "deep": ["--hidden", "1024,1024,1024", "--activation", "relu", "--init", "he", "--batch-size", "512",
             "--optimizer", "adam", "--learning-rate", "0.001", "--iterations", "30"],
}
MPI = ["mpirun", "--oversubscribe", "--bind-to", "none"]
TCP = ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo"]
CONFIGS = {
    "1 process, 1 worker": lambda p: [p, "--workers", "1"],
    "1 process, 2 workers": lambda p: [p, "--workers", "2"],
    "2 ranks x 1 worker, shared memory": lambda p: MPI + ["-n", "2", p, "--workers", "1"],
    "2 ranks x 1 worker, TCP loopback": lambda p: MPI + TCP + ["-n", "2", p, "--workers", "1"],
}


def run_json(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fit(points):
    """Least squares t = alpha + x / beta over (x bytes received per rank, t seconds)."""
    xs, ts = [p[0] for p in points], [p[1] for p in points]
    mx, mt = statistics.fmean(xs), statistics.fmean(ts)
    slope = sum((x - mx) * (t - mt) for x, t in zip(xs, ts)) / sum((x - mx) ** 2 for x in xs)
    return {"alpha_seconds": max(mt - slope * mx, 0.0), "beta_bytes_per_second": 1 / slope}


def allgather_fits(work):
    binary = os.path.join(work, "allgather_time")
    subprocess.run(["mpicc", "-O2", os.path.join(ROOT, "Benchmarks/reference/allgather_time.c"), "-o", binary], check=True)
    fits = {}
    for name, extra in [("shared memory", []), ("TCP loopback", TCP)]:
        out = subprocess.run(MPI + extra + ["-n", "2", binary], check=True, capture_output=True, text=True).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        # 2 ranks: each receives half of the total. Sizes from 4 KB, where the bandwidth term shows.
        fits[name] = dict(fit([(r["total_bytes"] / 2, r["seconds"]) for r in rows if r["total_bytes"] >= 4096]), measured=rows)
    return fits


def ring_allgather(total_bytes, n, alpha, beta):
    return (n - 1) * alpha + (n - 1) / n * total_bytes / beta


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ptrain", default=os.path.join(ROOT, ".build-mpi/release/ptrain"))
    args = parser.parse_args()
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    os.environ.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    seconds = {w: {c: [] for c in CONFIGS} for w in WORKLOADS}
    reports = {}
    for k in range(args.rounds):
        for w, flags in WORKLOADS.items():
            for c, command in CONFIGS.items():
                r = run_json(command(args.ptrain) + flags + ["--json"])
                seconds[w][c].append(r["train_seconds"] / r["iterations"])
                reports[(w, c)] = r
                print(f"round {k + 1}: {w}, {c}: {seconds[w][c][-1] * 1e3:.3f} ms/iteration", file=sys.stderr)
    with tempfile.TemporaryDirectory() as work:
        fits = allgather_fits(work)
    measured = {}
    for w in WORKLOADS:
        base = statistics.median(seconds[w]["1 process, 1 worker"])
        two = reports[(w, "2 ranks x 1 worker, shared memory")]
        layers = two["layers"]
        parameters = sum(a * b + b for a, b in zip(layers, layers[1:]))
        row_floats = 1 + sum(layers[1:-1]) + sum(layers[1:])
        measured[w] = {
            "flags": " ".join(WORKLOADS[w]),
            "parameters": parameters,
            "row_exchange_bytes": 4 * two["batch_size"] * row_floats,
            "parameter_exchange_bytes": 4 * parameters,
            "bytes_sent_per_rank_per_iteration_2_ranks": two["bytes_sent_per_iteration"],
            "params_sha256": {c: reports[(w, c)]["params_sha256"] for c in CONFIGS},
            "seconds_per_iteration_median": {c: statistics.median(v) for c, v in seconds[w].items()},
            "seconds_per_iteration_all": seconds[w],
            "speedup_over_1_worker": {c: base / statistics.median(v) for c, v in seconds[w].items()},
        }
    alpha = fits["TCP loopback"]["alpha_seconds"]
    projection = {}
    for w, m in measured.items():
        compute = m["seconds_per_iteration_median"]["1 process, 1 worker"]
        for gbit in (10, 100):
            beta = gbit * 1e9 / 8
            for n in (2, 4, 8, 16, 32, 64):
                comm = sum(ring_allgather(b, n, alpha, beta) for b in (m["row_exchange_bytes"], m["parameter_exchange_bytes"]))
                t = compute / n + comm
                projection.setdefault(w, []).append({"nodes": n, "gbit_per_second": gbit, "seconds_per_iteration": t,
                                                     "communication_seconds": comm, "speedup": compute / t})
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    document = {
        "command": "python3 Benchmarks/ranks.py --rounds %d" % args.rounds,
        "commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{model}, {os.cpu_count()} CPUs, Open MPI " + subprocess.run(["mpirun", "--version"], capture_output=True, text=True).stdout.split()[3],
        "measured": measured,
        "allgather_fit": {k: {"alpha_seconds": v["alpha_seconds"], "beta_bytes_per_second": v["beta_bytes_per_second"], "measured": v["measured"]}
                          for k, v in fits.items()},
        "projection_model": "compute/N + 2 ring allgathers, (N-1)*alpha + (N-1)/N*bytes/beta, alpha fitted on TCP loopback, beta = link rate, no overlap",
        "projection": projection,
    }
    path = os.path.join(ROOT, "Benchmarks/results/ranks.json")
    with open(path, "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")
    print(f"wrote {path}\n")
    print("| workload | " + " | ".join(CONFIGS) + " | bytes sent per rank per iteration (2 ranks) |")
    print("|---|" + "---|" * (len(CONFIGS) + 1))
    for w, m in measured.items():
        cells = [f"{m['seconds_per_iteration_median'][c] * 1e3:.3f} ms ({m['speedup_over_1_worker'][c]:.2f}x)" for c in CONFIGS]
        print(f"| {w} | " + " | ".join(cells) + f" | {', '.join(str(b) for b in m['bytes_sent_per_rank_per_iteration_2_ranks'])} |")
    print()
    for k, v in fits.items():
        print(f"allgather fit, {k}: alpha {v['alpha_seconds'] * 1e6:.1f} us, beta {v['beta_bytes_per_second'] / 1e9:.2f} GB/s")
    print("\n| workload | link | " + " | ".join(f"{n} nodes" for n in (2, 4, 8, 16, 32, 64)) + " |")
    print("|---|---|" + "---|" * 6)
    for w, rows in projection.items():
        for gbit in (10, 100):
            cells = [f"{r['speedup']:.1f}x" for r in rows if r["gbit_per_second"] == gbit]
            print(f"| {w} | {gbit} Gbit/s | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
