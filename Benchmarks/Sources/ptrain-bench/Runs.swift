import Dataset
import FMAPeak
import FMAPeak512
import Foundation
import Kernels
import Model
import Parallel
import Training

/// The repository root (this file is Benchmarks/Sources/ptrain-bench/Runs.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// A network the benchmarks train and its usual batch, defined once for every benchmark that runs it.
struct BenchNetwork {
    var hidden: [Int]
    var activation: ActivationKind = .sigmoid
    var initialization: Initialization = .lecture
    var batch: Int

    /// The lecture's 784-100-10 sigmoid net, batch 100.
    static let lecture = BenchNetwork(hidden: [100], batch: 100)
    /// 784-1024-10 sigmoid, batch 1000: 3.27 GFLOP per iteration (`flopsPerIteration`).
    static let heavy = BenchNetwork(hidden: [1024], batch: 1000)
    /// 784-1024-1024-1024-10 ReLU with He weights, batch 512: the layers above the first hold 2.1 of
    /// its 2.9 million weights; 8.1 GFLOP per iteration.
    static let deep = BenchNetwork(hidden: [1024, 1024, 1024], activation: .relu, initialization: .he, batch: 512)

    /// Every layer's width, MNIST's 784 inputs to its 10 classes.
    var widths: [Int] { [784] + hidden + [10] }

    /// A run of this network (`batch` overrides the usual batch, as weak scaling does).
    func configuration(batch: Int? = nil, iterations: Int, workers: Int, input: InputChoice = .auto) -> TrainingConfiguration {
        var config = TrainingConfiguration()
        config.hidden = hidden
        config.activation = activation
        config.initialization = initialization
        config.batchSize = batch ?? self.batch
        config.iterations = iterations
        config.workers = workers
        config.input = input
        return config
    }
}

/// One in-process training run with the engine ptrain uses: its trained network, its outcome and
/// the input layer one read (what `--input auto` chose).
struct BenchRun {
    var net: Network
    var outcome: TrainingOutcome
    var input: InputEncoding
    /// The training loop's time, without loading, set-up or evaluation.
    var trainSeconds: Double { outcome.trainSeconds }
}

func trainOnce(_ config: TrainingConfiguration, data: LabeledImages, kernels: KernelSet, topology: Topology) -> BenchRun {
    let builder = RunBuilder(kernels: kernels, topology: topology)
    let net = builder.initialNetwork(config, for: data)
    let trainer = builder.trainer(config, net: net, train: data)
    return BenchRun(net: net, outcome: trainer.run(), input: trainer.input)
}

/// The machine's own limit for N workers: N independent one-worker runs of `config` at once, run
/// i alone on CPU `cpus[i]` (its own loader and parameters, so nothing is shared or communicated).
/// Returns their summed samples/s while all of them were running (from each run's per-iteration
/// timestamps, over the window from the last start to the first finish), which is what an engine
/// that splits every iteration over those CPUs and balances perfectly could reach.
func independentRuns(_ config: TrainingConfiguration, cpus: [Int], data: LabeledImages, kernels: KernelSet,
                     topology: Topology) -> Double {
    let single = { var c = config; c.workers = 1; return c }()
    let stamps = (0..<cpus.count).map { _ in Timestamps(capacity: config.iterations) }
    concurrently(cpus.count) { i in
        let node = topology.nodes.first { $0.cpus.contains(cpus[i]) }?.id ?? 0
        let alone = Topology(nodes: [.init(id: node, cpus: [cpus[i]])], source: "one CPU")
        let builder = RunBuilder(kernels: kernels, topology: alone)
        _ = builder.trainer(single, net: builder.initialNetwork(single, for: data), train: data).run { _ in stamps[i].record() }
    }
    let start = stamps.map { $0.first }.max()!, end = stamps.map { $0.last }.min()!
    let iterations = stamps.map { $0.count(in: start...end) }.reduce(0, +)
    return Double(iterations * config.batchSize) / (end - start).seconds
}

/// When each iteration of one run ended (written by that run's serial step only).
final class Timestamps: @unchecked Sendable {
    private var times: [ContinuousClock.Instant] = []
    init(capacity: Int) { times.reserveCapacity(capacity) }
    func record() { times.append(.now) }
    var first: ContinuousClock.Instant { times.first! }
    var last: ContinuousClock.Instant { times.last! }
    func count(in window: ClosedRange<ContinuousClock.Instant>) -> Int { times.filter { window.contains($0) }.count }
}

/// The FMA chain loop at the widest vectors this CPU has: SIMD16 (AVX-512) where the avx512
/// kernels run, else SIMD8 (AVX2). Every benchmark's floor is this peak, measured in the same run.
func widestFMAChain(iterations: Int, start: Float) -> (flops: Double, sink: Float) {
    KernelVariant.avx512.isSupported ? fmaChain512(iterations: iterations, start: start) : fmaChain(iterations: iterations, start: start)
}

/// The name of the vectors `widestFMAChain` uses.
var widestVectors: String { KernelVariant.avx512.isSupported ? "AVX-512, SIMD16" : "AVX2, SIMD8" }

/// The FMA ceiling of `threads` cores at the widest vectors, in GFLOP/s: each thread runs the
/// 12-chain loop, and the total FLOPs are divided by the wall time of the slowest.
func fmaPeak(threads: Int, repeats: Int) -> Stats {
    let iterations = 4_000_000
    let flopsPerThread = widestFMAChain(iterations: 1, start: 0).flops * Double(iterations)
    let values = (0..<repeats).map { _ -> Double in
        let t = seconds {
            concurrently(threads) { i in chainSinks.store(i, widestFMAChain(iterations: iterations, start: Float(i) * 1e-9).sink) }
        }
        return Double(threads) * flopsPerThread / t / 1e9
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

/// FLOPs of one training iteration of a net of these widths with batch B: per layer l the GEMMs
/// in·W_l (forward) and inᵀ·d_l (dW_l), and for every layer above the first d_l·W_lᵀ (backward to
/// its input), 2·m·k·n each: 6·B·in·out per layer, 4·B·in·out for the first. For 784-100-10 that
/// is x·W1, z1·W2, dy·W2ᵀ, xᵀ·da1, z1ᵀ·dy. The elementwise work (activations, softmax, update) is
/// not counted: it is the floor a GEMM-bound trainer cannot beat.
func flopsPerIteration(widths: [Int], batch: Int) -> Double {
    let b = Double(batch)
    return (1..<widths.count).map { l in
        Double(l == 1 ? 4 : 6) * b * Double(widths[l - 1]) * Double(widths[l])
    }.reduce(0, +)
}
