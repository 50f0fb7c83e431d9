#!/usr/bin/env python3
"""Where the iterations of a `ptrain --trace` file went: the schedule's costs, per iteration.

Usage: trace_summary.py TRACE.json [TRACE.json ...]

For each file, over the traced iterations (medians unless said):
  span      wall time from the first item's start to the last item's end of an iteration
  busy      time each worker spent inside items in an iteration, and as a share of the span
  hand-off  from the last item's end of one iteration to the first item's start of the next,
            and the parts of it: to the serial step's start (the completing worker finds nothing
            left and counts its items), the serial step itself (loss, report, stop decision), and
            from its end to the first item (publishing the phase, taking the first items)
  end wait  mean time a worker waited for the others' last item of the iteration
  kinds     time per iteration in each kind of item (summed over workers) and each worker's share

Only the standard library is used; the trace format is the one ptrain writes (TraceFile.swift):
complete events ("ph": "X") with ts and dur in microseconds, the worker as tid, and the iteration
and item in args; the serial step is an event named "serial step" without an item.
"""
import json
import statistics
import sys
from collections import defaultdict


def kind(name):
    """'W1 rows 0..<56' -> 'W1', 'x·W1 block 1, rows 0..<10' -> 'x·W1 block 1', 'rows 0..<6' -> 'rows'."""
    if name.startswith("x·W1 block"):
        return name.split(",")[0]
    return name.split(" ")[0].rstrip(",")


def summarize(path):
    with open(path) as f:
        slices = [e for e in json.load(f)["traceEvents"] if e["ph"] == "X"]
    events = [e for e in slices if "item" in e["args"]]
    serial = {e["args"]["iteration"]: e for e in slices if "item" not in e["args"]}
    workers = sorted({e["tid"] for e in events})
    by_iteration = defaultdict(list)
    for e in events:
        by_iteration[e["args"]["iteration"]].append(e)
    iterations = sorted(by_iteration)
    spans, handoffs, end_waits = [], [], []
    to_serial, serial_steps, from_serial = [], [], []
    busy = defaultdict(list)
    kinds = defaultdict(lambda: defaultdict(float))
    previous_end = None
    for i in iterations:
        items = by_iteration[i]
        first = min(e["ts"] for e in items)
        last = max(e["ts"] + e["dur"] for e in items)
        spans.append(last - first)
        if previous_end is not None and i - 1 in by_iteration:
            handoffs.append(first - previous_end)
            step = serial.get(i - 1)
            if step is not None:
                to_serial.append(step["ts"] - previous_end)
                serial_steps.append(step["dur"])
                from_serial.append(first - step["ts"] - step["dur"])
        previous_end = last
        for w in workers:
            mine = [e for e in items if e["tid"] == w]
            busy[w].append(sum(e["dur"] for e in mine))
            if mine and len(workers) > 1:
                end_waits.append(last - max(e["ts"] + e["dur"] for e in mine))
        for e in items:
            kinds[kind(e["name"])][e["tid"]] += e["dur"]
    n = len(iterations)
    span = statistics.median(spans)
    print(f"{path}: {len(workers)} worker(s), iterations {iterations[0]}-{iterations[-1]}, {len(events)} items")
    print(f"  span        {span:8.1f} µs per iteration")
    for w in workers:
        b = statistics.median(busy[w])
        print(f"  busy        {b:8.1f} µs  worker {w} ({100 * b / span:.1f}% of the span)")
    if handoffs:
        print(f"  hand-off    {statistics.median(handoffs):8.2f} µs")
    if serial_steps:
        print(f"    to serial   {statistics.median(to_serial):6.2f} µs  (last item's end to the serial step)")
        print(f"    serial step {statistics.median(serial_steps):6.2f} µs")
        print(f"    to next     {statistics.median(from_serial):6.2f} µs  (serial step's end to the first item)")
    if end_waits:
        print(f"  end wait    {statistics.mean(end_waits):8.2f} µs per worker and iteration (mean)")
    print("  kinds (µs per iteration, all workers; then each worker's)")
    for k in sorted(kinds, key=lambda k: -sum(kinds[k].values())):
        total = sum(kinds[k].values()) / n
        shares = "  ".join(f"w{w} {kinds[k].get(w, 0.0) / n:6.1f}" for w in workers)
        print(f"    {k:14s} {total:7.1f}   {shares}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        summarize(p)
