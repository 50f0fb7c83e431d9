#!/usr/bin/env python3
"""The lecture's TwoLayerNet training loop in numpy: ptrain's peer in the benchmarks.

Same network (784-100-10, sigmoid, softmax cross-entropy, weights 0.01*N(0,1), zero biases), same
loop (batch drawn with replacement, SGD lr 0.1), same work per iteration as ptrain: one forward and
one backward pass, the loss recorded from that forward pass. (The lecture's notebook evaluates the
loss again after the update; that extra forward pass would make numpy look 50% slower than it is.)

Usage: two_layer_net.py MNIST_DIR [--iterations N] [--batch-size B] [--hidden H] [--dtype float32|float64] [--seed S]
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


def softmax(x):
    x = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=1, keepdims=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--iterations", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--hidden", type=int, default=100)
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
    w1 = (0.01 * rng.standard_normal((784, a.hidden))).astype(dt)
    b1 = np.zeros(a.hidden, dt)
    w2 = (0.01 * rng.standard_normal((a.hidden, 10))).astype(dt)
    b2 = np.zeros(10, dt)
    lr = dt.type(a.learning_rate)
    losses = []

    start = time.perf_counter()
    for _ in range(a.iterations):
        idx = rng.choice(x_train.shape[0], a.batch_size)
        x, t = x_train[idx], t_train[idx]
        a1 = x @ w1 + b1
        z1 = sigmoid(a1)
        y = softmax(z1 @ w2 + b2)
        losses.append(-np.sum(t * np.log(y + 1e-7)) / a.batch_size)
        dy = (y - t) / a.batch_size
        dw2 = z1.T @ dy
        db2 = dy.sum(axis=0)
        da1 = (dy @ w2.T) * (1 - z1) * z1
        dw1 = x.T @ da1
        db1 = da1.sum(axis=0)
        w1 -= lr * dw1
        b1 -= lr * db1
        w2 -= lr * dw2
        b2 -= lr * db2
    seconds = time.perf_counter() - start

    accuracy = float(np.mean(np.argmax(sigmoid(x_test @ w1 + b1) @ w2 + b2, axis=1) == t_test))
    print(json.dumps({
        "dtype": a.dtype, "iterations": a.iterations, "batch_size": a.batch_size, "train_seconds": seconds,
        "samples_per_second": a.iterations * a.batch_size / seconds, "test_accuracy": accuracy,
        "final_loss": float(losses[-1]), "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }))


if __name__ == "__main__":
    main()
