import Dataset
import FMAPeak
import Foundation
import Kernels
import Model
import Parallel
import Training

/// The repository root (this file is Benchmarks/Sources/ptrain-bench/Runs.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// One in-process training run with the engine ptrain uses; returns its outcome (the train time
/// excludes loading and evaluation).
func trainOnce(_ config: TrainingConfiguration, data: LabeledImages, kernels: KernelSet, topology: Topology) -> TrainingOutcome {
    let net = TwoLayerNet(shape: config.shape(input: data.pixelsPerImage, classes: 10), seed: config.seed)
    return Trainer(configuration: config, net: net, train: data, kernels: kernels, topology: topology).run()
}

/// The FMA ceiling of `threads` cores, in GFLOP/s: each thread runs the 12-chain loop, and the
/// total FLOPs are divided by the wall time of the slowest.
func fmaPeak(threads: Int, repeats: Int) -> Stats {
    let iterations = 4_000_000
    let values = (0..<repeats).map { _ -> Double in
        let t = seconds {
            concurrently(threads) { i in chainSinks.store(i, fmaChain(iterations: iterations, start: Float(i) * 1e-9).sink) }
        }
        return Double(threads) * Double(iterations) * 192 / t / 1e9
    }
    return Stats(values)
}

/// Keeps each thread's FMA result alive.
final class ChainSinks: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Float] = [:]
    func store(_ i: Int, _ v: Float) { lock.lock(); values[i] = v; lock.unlock() }
}
let chainSinks = ChainSinks()

/// FLOPs of one training iteration of a (input, hidden, 10) net with batch B: the five GEMMs
/// x·W1, z1·W2 (forward), dy·W2ᵀ, xᵀ·da1, z1ᵀ·dy (backward), 2·m·k·n each. The elementwise work
/// (sigmoid, softmax, update) is not counted: it is the floor a GEMM-bound trainer cannot beat.
func flopsPerIteration(input: Int = 784, hidden: Int, batch: Int) -> Double {
    let b = Double(batch), i = Double(input), h = Double(hidden), o = 10.0
    return 2 * b * i * h + 2 * b * h * o + 2 * b * o * h + 2 * i * b * h + 2 * h * b * o
}
