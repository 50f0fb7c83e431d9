#!/usr/bin/env python3
"""The lecture's TwoLayerNet training loop in numpy: ptrain's peer in the benchmarks.

Same network (784-100-10, sigmoid, softmax cross-entropy, weights 0.01*N(0,1), zero biases), same
loop (batch drawn with replacement, SGD lr 0.1), same work per iteration as ptrain: one forward and
one backward pass, the loss recorded from that forward pass. (The lecture's notebook evaluates the
loss again after the update; that extra forward pass would make numpy look 50% slower than it is.)

The same loop serves the compute-bound workloads of `ptrain-bench e2e`: --hidden takes a list of
widths (1024,1024,1024), --activation sigmoid|relu and --init lecture|he (He: sqrt(2/fan_in)*N(0,1)),
as ptrain's flags of the same names.

Usage: two_layer_net.py MNIST_DIR [--iterations N] [--batch-size B] [--hidden H[,H...]] [--activation A]
                        [--init I] [--dtype float32|float64] [--seed S]
Prints one JSON object: dtype, iterations, batch_size, train_seconds, samples_per_second, test_accuracy, threads.
The BLAS thread count comes from the environment (OPENBLAS_NUM_THREADS); the benchmark tries several.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np


def read_idx(folder, stem):
    path = os.path.join(folder, stem)
    opener = open
    if not os.path.exists(path):
        path, opener = path + ".gz", gzip.open
    with opener(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0)


def softmax(x):
    x = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=1, keepdims=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--iterations", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--hidden", default="100")
    p.add_argument("--activation", choices=["sigmoid", "relu"], default="sigmoid")
    p.add_argument("--init", choices=["lecture", "he"], default="lecture")
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    dt = np.dtype(a.dtype)

    x_train = read_idx(a.data, "train-images-idx3-ubyte").reshape(-1, 784).astype(dt) / dt.type(255.0)
    t_train = np.eye(10, dtype=dt)[read_idx(a.data, "train-labels-idx1-ubyte")]
    x_test = read_idx(a.data, "t10k-images-idx3-ubyte").reshape(-1, 784).astype(dt) / dt.type(255.0)
    t_test = read_idx(a.data, "t10k-labels-idx1-ubyte")

    rng = np.random.default_rng(a.seed)
    widths = [784] + [int(h) for h in a.hidden.split(",")] + [10]
    ws = [((0.01 if a.init == "lecture" else np.sqrt(2.0 / fan_in)) * rng.standard_normal((fan_in, fan_out))).astype(dt)
          for fan_in, fan_out in zip(widths[:-1], widths[1:])]
    bs = [np.zeros(fan_out, dt) for fan_out in widths[1:]]
    act = sigmoid if a.activation == "sigmoid" else relu
    lr = dt.type(a.learning_rate)
    losses = []

    def forward(x):
        zs = [x]
        for w, b in zip(ws[:-1], bs[:-1]):
            zs.append(act(zs[-1] @ w + b))
        return zs, zs[-1] @ ws[-1] + bs[-1]

    start = time.perf_counter()
    for _ in range(a.iterations):
        idx = rng.choice(x_train.shape[0], a.batch_size)
        x, t = x_train[idx], t_train[idx]
        zs, scores = forward(x)
        y = softmax(scores)
        losses.append(-np.sum(t * np.log(y + 1e-7)) / a.batch_size)
        d = (y - t) / a.batch_size
        for layer in reversed(range(len(ws))):
            dw, db = zs[layer].T @ d, d.sum(axis=0)
            if layer > 0:
                z = zs[layer]
                d = (d @ ws[layer].T) * ((1 - z) * z if a.activation == "sigmoid" else (z > 0))
            ws[layer] -= lr * dw
            bs[layer] -= lr * db
    seconds = time.perf_counter() - start

    accuracy = float(np.mean(np.argmax(forward(x_test)[1], axis=1) == t_test))
    print(json.dumps({
        "dtype": a.dtype, "iterations": a.iterations, "batch_size": a.batch_size, "train_seconds": seconds,
        "samples_per_second": a.iterations * a.batch_size / seconds, "test_accuracy": accuracy,
        "final_loss": float(losses[-1]), "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }))


if __name__ == "__main__":
    main()
