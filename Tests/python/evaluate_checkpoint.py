#!/usr/bin/env python3
"""Evaluate a ptrain checkpoint with Python's safetensors and numpy alone.

Usage: evaluate_checkpoint.py CHECKPOINT MNIST_DIR

Loads W1, b1, W2, b2 bit-exactly with safetensors, checks them against the params_sha256 recorded
in the metadata, runs the lecture's forward pass (float64) on the MNIST test set in MNIST_DIR
(t10k-*-ubyte or .gz) and prints one JSON object: test_accuracy, params_sha256_ok, iteration.
"""
import hashlib
import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

# The IDX reader of the lecture's numpy loop, shared rather than copied.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Benchmarks", "reference"))
from two_layer_net import read_idx  # noqa: E402


def main():
    checkpoint, folder = sys.argv[1], sys.argv[2]
    tensors = load_file(checkpoint)
    with safe_open(checkpoint, framework="numpy") as f:
        metadata = f.metadata()
    flat = b"".join(tensors[name].astype("<f4").tobytes() for name in ("W1", "b1", "W2", "b2"))
    sha_ok = hashlib.sha256(flat).hexdigest() == metadata["params_sha256"]

    x = read_idx(folder, "t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255.0
    t = read_idx(folder, "t10k-labels-idx1-ubyte")
    w1, b1, w2, b2 = (tensors[n].astype(np.float64) for n in ("W1", "b1", "W2", "b2"))
    z1 = 1.0 / (1.0 + np.exp(-(x.astype(np.float64) @ w1 + b1)))
    a2 = z1 @ w2 + b2
    accuracy = float(np.mean(np.argmax(a2, axis=1) == t))
    print(json.dumps({"test_accuracy": accuracy, "params_sha256_ok": sha_ok, "iteration": int(metadata["iteration"])}))


if __name__ == "__main__":
    main()
