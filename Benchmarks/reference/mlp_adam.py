#!/usr/bin/env python3
"""The modern recipe in numpy or JAX: ptrain's peers in the time-to-accuracy benchmark.

784-256-256-10 (any --hidden list), ReLU, He-normal weights (sqrt(2/fan_in)*N(0,1)), zero biases,
softmax cross-entropy, Adam (lr 0.001, betas 0.9/0.999, eps 1e-8, bias correction from the step
count), learning rate cosine-decayed to 0 over the run (iteration k of T: lr*(1 + cos(pi*k/T))/2),
batch 100, each sample once per epoch (a fresh permutation per epoch), float32 throughout: the
same recipe as `ptrain --hidden 256,256 --activation relu --init he --optimizer adam
--learning-rate 0.001 --schedule cosine --epochs 20`.

After each epoch the test accuracy is evaluated; the evaluation's time is measured and excluded
from the training time. With --stop-at-target the run ends at the first epoch whose accuracy
reaches --target.

Usage: mlp_adam.py MNIST_DIR [--framework numpy|jax] [--epochs 20] [--hidden 256,256]
                   [--target 0.98] [--stop-at-target] [--seed 1]
Prints one JSON object: framework, threads, epochs (per epoch: epoch, train_seconds cumulative,
test_accuracy), seconds_to_target (null if not reached), epoch_of_target, eval_seconds.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from two_layer_net import read_idx  # noqa: E402


def init_params(widths, rng):
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * math.sqrt(2.0 / fan_in)).astype(np.float32))
        params.append(np.zeros(fan_out, dtype=np.float32))
    return params


def cosine(lr, k, total):
    return lr * (1 + math.cos(math.pi * k / total)) / 2


class NumpyRecipe:
    """Forward, backward and Adam with numpy's BLAS."""

    def __init__(self, params):
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, x, t, lr, step):
        p = self.params
        layers = len(p) // 2
        zs = [x]
        for i in range(layers - 1):
            zs.append(np.maximum(zs[-1] @ p[2 * i] + p[2 * i + 1], 0))
        a = zs[-1] @ p[-2] + p[-1]
        a = a - a.max(axis=1, keepdims=True)
        e = np.exp(a)
        y = e / e.sum(axis=1, keepdims=True)
        d = y
        d[np.arange(len(t)), t] -= 1
        d /= len(t)
        grads = [None] * len(p)
        for i in reversed(range(layers)):
            grads[2 * i] = zs[i].T @ d
            grads[2 * i + 1] = d.sum(axis=0)
            if i > 0:
                d = (d @ p[2 * i].T) * (zs[i] > 0)
        c1, c2 = 1 - 0.9 ** step, 1 - 0.999 ** step
        for j, g in enumerate(grads):
            self.m[j] = 0.9 * self.m[j] + 0.1 * g
            self.v[j] = 0.999 * self.v[j] + 0.001 * (g * g)
            p[j] -= (lr * (self.m[j] / c1) / (np.sqrt(self.v[j] / c2) + 1e-8)).astype(np.float32)

    def accuracy(self, x, t):
        z = x
        p = self.params
        for i in range(len(p) // 2 - 1):
            z = np.maximum(z @ p[2 * i] + p[2 * i + 1], 0)
        return float(np.mean(np.argmax(z @ p[-2] + p[-1], axis=1) == t))


class JaxRecipe:
    """The same step as one jitted JAX function (XLA on the CPU)."""

    def __init__(self, params):
        import jax
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp
        self.params = [jnp.asarray(p) for p in params]
        self.m = [jnp.zeros_like(p) for p in self.params]
        self.v = [jnp.zeros_like(p) for p in self.params]

        def loss(params, x, t):
            z = x
            for i in range(len(params) // 2 - 1):
                z = jax.nn.relu(z @ params[2 * i] + params[2 * i + 1])
            a = z @ params[-2] + params[-1]
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(a), t[:, None], axis=1))

        def step(params, m, v, x, t, lr, k):
            grads = jax.grad(loss)(params, x, t)
            c1, c2 = 1 - 0.9 ** k, 1 - 0.999 ** k
            m = [0.9 * mi + 0.1 * g for mi, g in zip(m, grads)]
            v = [0.999 * vi + 0.001 * g * g for vi, g in zip(v, grads)]
            params = [p - lr * (mi / c1) / (jnp.sqrt(vi / c2) + 1e-8) for p, mi, vi in zip(params, m, v)]
            return params, m, v

        def predict(params, x):
            z = x
            for i in range(len(params) // 2 - 1):
                z = jax.nn.relu(z @ params[2 * i] + params[2 * i + 1])
            return jnp.argmax(z @ params[-2] + params[-1], axis=1)

        self._step = jax.jit(step)
        self._predict = jax.jit(predict)

    def step(self, x, t, lr, step):
        self.params, self.m, self.v = self._step(self.params, self.m, self.v, x, t, np.float32(lr), np.float32(step))

    def accuracy(self, x, t):
        return float(np.mean(np.asarray(self._predict(self.params, x)) == t))

    def sync(self):
        self.jax.block_until_ready(self.params)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--framework", choices=["numpy", "jax"], default="numpy")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--target", type=float, default=0.98)
    parser.add_argument("--stop-at-target", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    x = read_idx(args.folder, "train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255.0
    t = read_idx(args.folder, "train-labels-idx1-ubyte").astype(np.int32)
    xt = read_idx(args.folder, "t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255.0
    tt = read_idx(args.folder, "t10k-labels-idx1-ubyte").astype(np.int32)
    rng = np.random.default_rng(args.seed)
    widths = [784] + [int(w) for w in args.hidden.split(",")] + [10]
    params = init_params(widths, rng)
    recipe = JaxRecipe(params) if args.framework == "jax" else NumpyRecipe(params)
    n, b = len(x), args.batch_size
    per_epoch = n // b
    total = per_epoch * args.epochs
    if args.framework == "jax":
        # Compile before the clock starts (XLA's compilation is not training time).
        recipe.step(x[:b], t[:b], 0.0, 1)
        recipe.accuracy(xt[:b], tt[:b])
        recipe.params = [recipe.jnp.asarray(p) for p in params]
        recipe.m = [recipe.jnp.zeros_like(p) for p in recipe.params]
        recipe.v = [recipe.jnp.zeros_like(p) for p in recipe.params]
        recipe.sync()
    epochs, train, evaluation, reached = [], 0.0, 0.0, None
    k = 0
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(n)
        start = time.perf_counter()
        for i in range(per_epoch):
            rows = order[i * b:(i + 1) * b]
            k += 1
            recipe.step(x[rows], t[rows], cosine(args.learning_rate, k - 1, total), k)
        if args.framework == "jax":
            recipe.sync()
        train += time.perf_counter() - start
        start = time.perf_counter()
        accuracy = recipe.accuracy(xt, tt)
        evaluation += time.perf_counter() - start
        epochs.append({"epoch": epoch, "train_seconds": train, "test_accuracy": accuracy})
        if reached is None and accuracy >= args.target:
            reached = epoch
            if args.stop_at_target:
                break
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    print(json.dumps({"framework": args.framework, "threads": threads, "epochs": epochs,
                      "seconds_to_target": epochs[reached - 1]["train_seconds"] if reached else None,
                      "epoch_of_target": reached, "eval_seconds": evaluation}))


if __name__ == "__main__":
    main()
