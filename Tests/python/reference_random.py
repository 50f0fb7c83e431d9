#!/usr/bin/env python3
"""ptrain's random numbers, reimplemented from docs/reproducibility.md ("Random numbers") with numpy.

Philox4x32-10 keyed by the seed; the batch sampler (with replacement, and per-epoch Fisher-Yates
shuffles); the initial weights (Box-Muller in float64 with the C library's log, cos and sin, which
Python's math module calls, scaled in float64 and rounded once to float32). An independent port:
the test suite (GoldenDigestTests) checks that it reproduces ptrain's indices and initial weights
bit for bit.

Usage: reference_random.py QUERY_JSON  (prints one JSON object)
QUERY_JSON: {"seed": 1, "sample_count": 60000, "batch_size": 100,
             "replacement": [[iteration, rows], ...], "epoch": [[iteration, rows], ...],
             "init": {"widths": [784, 100, 10], "init": "lecture", "seed": 1}}
Answer: {"replacement": [[indices...], ...], "epoch": [[indices...], ...],
         "init_sha256": "...", "init_first": [float32 bits of the first 8 weights]}
"""
import hashlib
import json
import math
import sys

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF

# Counter word 3 of each purpose (RandomStream).
INITIAL_WEIGHTS, BATCH_WITH_REPLACEMENT, EPOCH_SHUFFLE = 1, 2, 3


def philox(seed, counters):
    """Philox4x32-10 of counters (an (n, 4) uint64 array of 32-bit words) under the key `seed`."""
    c = np.array(counters, dtype=np.uint64).reshape(-1, 4)
    k0, k1 = np.uint64(seed & MASK), np.uint64((seed >> 32) & MASK)
    mask = np.uint64(MASK)
    for r in range(10):
        if r > 0:
            k0 = (k0 + np.uint64(W0)) & mask
            k1 = (k1 + np.uint64(W1)) & mask
        p0 = np.uint64(M0) * c[:, 0]  # < 2^64: no overflow
        p1 = np.uint64(M1) * c[:, 2]
        c = np.stack([((p1 >> np.uint64(32)) ^ c[:, 1] ^ k0) & mask, p1 & mask,
                      ((p0 >> np.uint64(32)) ^ c[:, 3] ^ k1) & mask, p0 & mask], axis=1)
    return c


def uniform(lo, hi, bound):
    """floor((hi * 2^32 + lo) * bound / 2^64), exactly (Python integers)."""
    return ((int(hi) << 32 | int(lo)) * bound) >> 64


def replacement_indices(seed, sample_count, iteration, rows):
    """Row r of `iteration`: the block at (r // 2, iteration lo, iteration hi, 2), words (0, 1) for
    even rows and (2, 3) for odd rows."""
    blocks = philox(seed, [[r // 2, iteration & MASK, iteration >> 32, BATCH_WITH_REPLACEMENT] for r in range(rows)])
    return [uniform(b[0], b[1], sample_count) if r % 2 == 0 else uniform(b[2], b[3], sample_count)
            for r, b in enumerate(blocks)]


def permutation(seed, sample_count, epoch):
    """Fisher-Yates from the last position: step s swaps s with uniform(0..s) from the block at
    (s lo, s hi, epoch, 3), words 0 and 1."""
    steps = np.arange(sample_count - 1, 0, -1, dtype=np.uint64)
    counters = np.stack([steps & np.uint64(MASK), steps >> np.uint64(32),
                         np.full_like(steps, epoch & MASK), np.full_like(steps, EPOCH_SHUFFLE)], axis=1)
    blocks = philox(seed, counters)
    p = list(range(sample_count))
    for s, b in zip(range(sample_count - 1, 0, -1), blocks):
        j = uniform(b[0], b[1], s + 1)
        p[s], p[j] = p[j], p[s]
    return p


def epoch_indices(seed, sample_count, batch_size, iteration, rows):
    """Row r of `iteration` is position iteration * batch_size + r of the concatenated epochs."""
    out, cache = [], {}
    for r in range(rows):
        position = iteration * batch_size + r
        epoch = position // sample_count
        if epoch not in cache:
            cache[epoch] = permutation(seed, sample_count, epoch)
        out.append(cache[epoch][position % sample_count])
    return out


def scale(init, fan_in, fan_out):
    return {"lecture": 0.01, "he": math.sqrt(2 / fan_in), "glorot": math.sqrt(2 / (fan_in + fan_out))}[init]


def initial_parameters(widths, init, seed):
    """The flat buffer W1, b1, ..., WL, bL: the weight at flat position p is
    float32(scale * normal(p)), normal(p) lane p % 4 of Box-Muller on the block (p // 4, 0, 0, 1);
    biases are zero."""
    count = sum(a * b + b for a, b in zip(widths, widths[1:]))
    blocks = philox(seed, [[q & MASK, q >> 32, 0, INITIAL_WEIGHTS] for q in range((count + 3) // 4)])
    normals = []
    for w in blocks:
        for a, b in ((w[0], w[1]), (w[2], w[3])):
            u1 = (float(a) + 1) * 2.0 ** -32
            u2 = float(b) * 2.0 ** -32
            r = math.sqrt(-2 * math.log(u1))
            theta = 2 * math.pi * u2
            normals += [r * math.cos(theta), r * math.sin(theta)]
    params = np.zeros(count, dtype=np.float32)
    offset = 0
    for fan_in, fan_out in zip(widths, widths[1:]):
        s = scale(init, fan_in, fan_out)
        n = fan_in * fan_out
        params[offset:offset + n] = np.array([s * normals[p] for p in range(offset, offset + n)], dtype=np.float64).astype(np.float32)
        offset += n + fan_out
    return params


def main():
    q = json.loads(sys.argv[1])
    seed, n, batch = q["seed"], q["sample_count"], q["batch_size"]
    answer = {
        "replacement": [replacement_indices(seed, n, i, rows) for i, rows in q.get("replacement", [])],
        "epoch": [epoch_indices(seed, n, batch, i, rows) for i, rows in q.get("epoch", [])],
    }
    if "init" in q:
        params = initial_parameters(q["init"]["widths"], q["init"]["init"], q["init"]["seed"])
        answer["init_sha256"] = hashlib.sha256(params.astype("<f4").tobytes()).hexdigest()
        answer["init_first"] = [int(v) for v in params[:8].view(np.uint32)]
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
