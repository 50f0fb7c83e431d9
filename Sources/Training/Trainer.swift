import Dataset
import Foundation
import Kernels
import Model
import Parallel

/// Progress of a run, reported by worker 0 after each iteration's update.
public struct IterationReport: Sendable {
    public var iteration: Int
    public var iterations: Int
    public var loss: Float
    public var elapsedSeconds: Double
}

/// Why a run ended.
public enum StopReason: Equatable, Sendable {
    case completed
    /// A stop was requested (e.g. SIGINT); training ended early.
    case interrupted
    /// The loss of `iteration` (1-based) was not finite.
    case diverged(iteration: Int, loss: Float)
    /// The per-iteration hook threw (e.g. a checkpoint could not be written).
    case failed(String)
}

/// Where the workers' time went, in seconds per worker averaged over workers, measured inside the
/// loop with a monotonic clock (6 readings per iteration, about 0.2 µs in all).
public struct PhaseTimes: Sendable, Equatable, Codable {
    /// Batch assembly and the row phase (forward and backward to da1).
    public var compute = 0.0
    /// The parameter phase (the reduction over the batch) and the SGD update.
    public var reduction = 0.0
    /// Waiting at the two barriers, including waiting for worker 0's bookkeeping.
    public var synchronisation = 0.0
    /// Worker 0's per-iteration bookkeeping (loss, progress, checkpoints, evaluations) spread over workers.
    public var bookkeeping = 0.0

    public var total: Double { compute + reduction + synchronisation + bookkeeping }
}

/// The outcome of `Trainer.run`.
public struct TrainingOutcome: Sendable {
    public var stop: StopReason
    /// Iterations completed in total (including those before a resume).
    public var iterationsDone: Int
    /// Loss of every iteration run in this call.
    public var losses: [Float]
    public var trainSeconds: Double
    public var phases: PhaseTimes
    public var warnings: [String]
}

/// The data-parallel training loop: loader -> workers (row phase) -> reducer (parameter phase) -> SGD update.
///
/// Each of N pinned worker threads runs the whole loop (SPMD) with two barriers per iteration:
///
///     for each iteration i:
///         assemble rows R_w of batch i            (sharded loader, pure function of seed and i)
///         rowPhase(R_w): forward, loss, dy, da1   (Backprop.rowPhase)
///         ---- barrier ----
///         parameterPhase(S_w): dW1, dW2, db1, db2 summed over all rows in row order (the reduction)
///         update(S_w): θ ← θ − η·g, repack W1 rows of S_w
///         worker 0: record loss, report, decide whether to stop
///         ---- barrier ----
///
/// R_w and S_w are fixed partitions of rows and parameters; results do not depend on them.
public final class Trainer: @unchecked Sendable {
    public let configuration: TrainingConfiguration
    public let net: TwoLayerNet
    public let loader: ShardedLoader
    public let kernels: KernelSet
    public let topology: Topology
    public let placement: Placement
    /// Iterations already done (non-zero after a resume).
    public private(set) var iteration: Int

    /// Set from any thread (e.g. a signal handler's dispatch source) to stop after the current iteration.
    public let stopRequest = StopFlag()

    public init(configuration: TrainingConfiguration, net: TwoLayerNet, train: LabeledImages,
                kernels: KernelSet, topology: Topology, startIteration: Int = 0) {
        precondition(configuration.workers >= 1 && configuration.workers <= configuration.batchSize)
        self.configuration = configuration
        self.net = net
        self.kernels = kernels
        self.topology = topology
        self.iteration = startIteration
        placement = Placement(topology: topology, workers: configuration.workers, policy: configuration.placement)
        let sampler = BatchSampler(mode: configuration.sampling, seed: configuration.seed,
                                   sampleCount: train.count, batchSize: configuration.batchSize)
        loader = ShardedLoader(images: train, sampler: sampler, nodes: placement.nodes)
    }

    /// Trains until `configuration.iterations` are done or a stop is requested.
    /// `report` runs on worker 0 after every iteration's update, while the other workers wait at the
    /// barrier, so it may read `net` (e.g. to write a checkpoint); if it throws, training stops.
    public func run(report: @escaping @Sendable (IterationReport) throws -> Void = { _ in }) -> TrainingOutcome {
        let config = configuration
        let layout = net.layout
        let backprop = Backprop(kernels: kernels.functions, layout: layout)
        let batch = BatchBuffers(layout: layout, batchSize: config.batchSize)
        backprop.packW1(net, into: batch)
        let start = iteration
        let total = config.iterations
        loader.sampler.prepare(iteration: start)
        let shared = LoopState(capacity: max(total - start, 0))
        let net = self.net, loader = self.loader, stopRequest = self.stopRequest
        let clock = ContinuousClock.now
        let times = PhaseLog(workers: placement.slots.count)
        let warnings = WorkerPool.run(placement: placement, cpuCount: topology.cpuCount) { worker in
            let rows = evenSplit(config.batchSize, worker.index, worker.count)
            let slice = ParameterSlice.partition(layout.shape, worker: worker.index, of: worker.count)
            let scratch = WorkerScratch(shape: layout.shape)  // first touch on the worker's own node
            var mine = PhaseTimes()
            var i = start
            while i < total {
                let t0 = ContinuousClock.now
                loader.assemble(iteration: i, rows: rows, into: batch, node: worker.slot.node)
                backprop.rowPhase(net, batch, scratch, rows: rows)
                let t1 = ContinuousClock.now
                worker.barrier.wait()
                let t2 = ContinuousClock.now
                backprop.parameterPhase(batch, scratch, slice: slice)
                backprop.update(net, batch, slice: slice, learningRate: config.learningRate)
                let t3 = ContinuousClock.now
                if worker.index == 0 {
                    let loss = batch.meanLoss
                    shared.losses.append(loss)
                    if !loss.isFinite {
                        shared.stop = .diverged(iteration: i + 1, loss: loss)
                    } else {
                        do {
                            try report(IterationReport(iteration: i + 1, iterations: total, loss: loss,
                                                       elapsedSeconds: (t3 - clock).seconds))
                            if stopRequest.isSet && i + 1 < total { shared.stop = .interrupted }
                        } catch {
                            shared.stop = .failed("\(error)")
                        }
                    }
                    loader.sampler.prepare(iteration: i + 1)
                }
                let t4 = ContinuousClock.now
                worker.barrier.wait()
                let t5 = ContinuousClock.now
                mine.compute += (t1 - t0).seconds
                mine.synchronisation += (t2 - t1).seconds + (t5 - t4).seconds
                mine.reduction += (t3 - t2).seconds
                mine.bookkeeping += (t4 - t3).seconds
                i += 1
                if shared.stop != .completed { break }
            }
            times.record(worker.index, mine)
        }
        let seconds = (ContinuousClock.now - clock).seconds
        iteration = start + shared.losses.count
        return TrainingOutcome(stop: shared.stop, iterationsDone: iteration, losses: shared.losses,
                               trainSeconds: seconds, phases: times.average, warnings: warnings)
    }
}

/// State written by worker 0 between the two barriers of an iteration and read by all workers
/// after the second: the barrier orders the accesses, so no lock is needed.
final class LoopState: @unchecked Sendable {
    var losses: [Float] = []
    var stop: StopReason = .completed
    init(capacity: Int) { losses.reserveCapacity(capacity) }
}

/// Each worker's phase times, written once at the end of its loop.
final class PhaseLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [PhaseTimes]
    init(workers: Int) { entries = Array(repeating: PhaseTimes(), count: workers) }
    func record(_ worker: Int, _ times: PhaseTimes) { lock.lock(); entries[worker] = times; lock.unlock() }
    var average: PhaseTimes {
        lock.lock()
        defer { lock.unlock() }
        let n = Double(entries.count)
        return PhaseTimes(compute: entries.map(\.compute).reduce(0, +) / n, reduction: entries.map(\.reduction).reduce(0, +) / n,
                          synchronisation: entries.map(\.synchronisation).reduce(0, +) / n,
                          bookkeeping: entries.map(\.bookkeeping).reduce(0, +) / n)
    }
}

/// A flag set from any thread and polled by worker 0 once per iteration.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public func set() { lock.lock(); value = true; lock.unlock() }
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
