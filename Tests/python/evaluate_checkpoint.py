#!/usr/bin/env python3
"""Evaluate a ptrain checkpoint with Python's safetensors and numpy alone.

Usage: evaluate_checkpoint.py CHECKPOINT MNIST_DIR

Loads W1, b1, ..., WL, bL bit-exactly with safetensors, checks them against the params_sha256
recorded in the metadata, runs the network's forward pass (float64) on the MNIST test set in
MNIST_DIR (t10k-*-ubyte or .gz) and prints one JSON object: test_accuracy, params_sha256_ok,
iteration, layers, activation. Reads format versions 1 (the lecture's one sigmoid layer: metadata
input, hidden, classes) and 2 (metadata layers, activation, init); docs/checkpoints.md.
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

ACTIVATIONS = {
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
}


def network(metadata):
    """The widths and activation a checkpoint's metadata declares."""
    if metadata["format_version"] == "1":
        return [int(metadata[k]) for k in ("input", "hidden", "classes")], "sigmoid"
    return [int(w) for w in metadata["layers"].split(",")], metadata["activation"]


def main():
    checkpoint, folder = sys.argv[1], sys.argv[2]
    tensors = load_file(checkpoint)
    with safe_open(checkpoint, framework="numpy") as f:
        metadata = f.metadata()
    widths, activation = network(metadata)
    names = [f"{kind}{layer}" for layer in range(1, len(widths)) for kind in ("W", "b")]
    flat = b"".join(tensors[name].astype("<f4").tobytes() for name in names)
    sha_ok = hashlib.sha256(flat).hexdigest() == metadata["params_sha256"]

    x = read_idx(folder, "t10k-images-idx3-ubyte").reshape(-1, widths[0]).astype(np.float32) / 255.0
    t = read_idx(folder, "t10k-labels-idx1-ubyte")
    z = x.astype(np.float64)
    layers = len(widths) - 1
    for layer in range(1, layers + 1):
        a = z @ tensors[f"W{layer}"].astype(np.float64) + tensors[f"b{layer}"].astype(np.float64)
        z = ACTIVATIONS[activation](a) if layer < layers else a
    accuracy = float(np.mean(np.argmax(z, axis=1) == t))
    print(json.dumps({"test_accuracy": accuracy, "params_sha256_ok": sha_ok, "iteration": int(metadata["iteration"]),
                      "layers": widths, "activation": activation}))


if __name__ == "__main__":
    main()
