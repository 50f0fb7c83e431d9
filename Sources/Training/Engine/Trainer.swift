import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Synchronization

/// Progress of a run, reported by worker 0 after each iteration's update.
public struct IterationReport: Sendable {
    /// The iteration just completed (1-based, counted from the run's start, before any resume).
    public var iteration: Int
    /// The run's total iterations.
    public var iterations: Int
    /// That iteration's mean cross-entropy over its batch.
    public var loss: Float
    /// Seconds since the training loop started.
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
/// loop with a monotonic clock (`MonotonicInstant`: two readings per work item, tens of nanoseconds each).
public struct PhaseTimes: Sendable, Equatable, Codable {
    /// Batch assembly, layer one and the row items (forward and backward to da1), staging.
    public var compute = 0.0
    /// The parameter phase (the reduction over the batch) and the update.
    public var reduction = 0.0
    /// Everything else a worker spends in the loop: waiting for the next phase or for the items an
    /// item needs, taking items, and being descheduled when workers outnumber CPUs.
    public var synchronisation = 0.0
    /// The serial steps between phases (loss, progress, checkpoints, evaluations, the stop
    /// decision; `--trace` shows each as a slice).
    public var bookkeeping = 0.0
    /// A rank of a run across processes (`RankTrainer`): the row and parameter exchanges and the
    /// ranks' agreement after each iteration, including waiting there for slower ranks; 0 in one process.
    public var exchange = 0.0

    /// The sum of the parts.
    public var total: Double { compute + reduction + synchronisation + bookkeeping + exchange }
}

/// The outcome of `Trainer.run`.
public struct TrainingOutcome: Sendable {
    /// Why the run ended: completed, interrupted or diverged.
    public var stop: StopReason
    /// Iterations completed in total (including those before a resume).
    public var iterationsDone: Int
    /// Loss of every iteration run in this call.
    public var losses: [Float]
    /// Wall time of the training loop, without loading or evaluation.
    public var trainSeconds: Double
    /// Where the workers' time went (`ptrain --json`'s `time_split`).
    public var phases: PhaseTimes
    /// Things the user should know that did not stop the run (oversubscription, pinning refused).
    public var warnings: [String]
    /// The items of the iterations `run(trace:)` asked for, in order of their start.
    public var trace: [TraceEvent] = []
}

/// The data-parallel training loop: loader -> workers (layer one, row phase) -> reducer (parameter
/// phase) -> update (`ParameterUpdate`).
///
/// N pinned worker threads share one `WorkQueue`; each iteration is the phases of `Schedule`:
///
///     sparse input (MNIST), iteration i, one phase:
///         every dW_l and db_l summed over all rows of batch i in row order (the reduction), and
///         the update (W1 items: home = their k-block's workers; every W item repacks its rows for
///         the row items); x·W1 of batch i+1 per input k-block, each block once its W1 rows are
///         updated (home: the block's workers); batch i+1's row phase, forward from Σ blocks to the
///         loss and back to d_1 (Backprop.rowPhase), each row item once its rows' forward items and
///         the other W items and the bias item are done; stage batch i+2
///     dense input, two phases:
///     phase "rows"        assemble and normalize rows, the whole forward and backward to d_1
///     phase "parameters"  the reduction and update, repack the updated W rows; prefetch batch i+1
///     serial step after the parameter phase (the thread that finished its last item): record the
///         loss, report, decide to stop, make the next batch current
///
/// Layer one and the row phase of the first batch (and staging the second) run before the
/// workers start.
///
/// Which thread runs which item depends on timing; the results do not (docs/reproducibility.md).
public final class Trainer: @unchecked Sendable {
    /// The run being trained.
    public let configuration: TrainingConfiguration
    /// The parameters, updated in place each iteration.
    public let net: Network
    /// The batches' source.
    public let loader: ShardedLoader
    /// The kernel variant of every worker.
    public let kernels: KernelSet
    /// The layout the workers were placed on.
    public let topology: Topology
    /// Which CPU each worker is pinned to.
    public let placement: Placement
    /// How layer 1 reads the pixels (`configuration.input` resolved for the training images).
    public let input: InputEncoding
    /// Iterations already done (non-zero after a resume).
    public private(set) var iteration: Int
    /// The update rule's state (momentum, Adam's moments), updated in place by the run; a
    /// checkpoint saves it and a resume passes it back.
    public let optimizerState: OptimizerState

    /// Set from any thread (e.g. a signal handler's dispatch source) to stop after the current iteration.
    public let stopRequest = StopFlag()

    /// `configuration.input` must resolve for `train` (the CLI checks `InputChoice.resolve` first).
    /// `optimizerState`: the state a resumed run continues from; a new run's starts at zero.
    public init(configuration: TrainingConfiguration, net: Network, train: LabeledImages,
                kernels: KernelSet, topology: Topology, startIteration: Int = 0, optimizerState: OptimizerState? = nil) {
        precondition(configuration.workers >= 1 && configuration.workers <= configuration.batchSize)
        let setup = LoopSetup(configuration: configuration, net: net, train: train, kernels: kernels, topology: topology,
                              startIteration: startIteration, optimizerState: optimizerState)
        self.configuration = configuration
        self.net = net
        self.kernels = kernels
        self.topology = topology
        self.iteration = startIteration
        input = setup.input
        placement = setup.placement
        loader = setup.loader
        self.optimizerState = setup.optimizerState
    }

    /// Trains until `configuration.iterations` are done or a stop is requested.
    /// `report` runs in the serial step after every iteration's update, on one worker thread while
    /// the others wait, so it may read `net` (e.g. to write a checkpoint); if it throws, training stops.
    /// `trace`: iterations (0-based, as `iteration` counts) whose work items the outcome lists
    /// (`TraceEvent`); recording them changes no result.
    public func run(trace: Range<Int>? = nil, report: @escaping @Sendable (IterationReport) throws -> Void = { _ in }) -> TrainingOutcome {
        // The loop is generic over the update rule, and each built-in rule gets its own
        // specialization: the parameter items then call the rule directly instead of through an
        // existential box (hundreds of calls per iteration: the sparse first layer calls it per W1 row).
        switch configuration.update {
        case let rule as SGD: return run(rule: rule, trace: trace, report: report)
        case let rule as Momentum: return run(rule: rule, trace: trace, report: report)
        case let rule as Adam: return run(rule: rule, trace: trace, report: report)
        case let rule: return run(rule: rule, trace: trace, report: report)
        }
    }

    private func run<Rule: ParameterUpdate>(rule: Rule, trace: Range<Int>?,
                                            report: @escaping @Sendable (IterationReport) throws -> Void) -> TrainingOutcome {
        let config = configuration
        let layout = net.layout
        let backprop = Backprop(kernels: kernels.functions, layout: layout)
        let sparse = input == .sparse
        let batch = BatchBuffers(layout: layout, batchSize: config.batchSize, sparseInput: sparse)
        let start = iteration
        let total = config.iterations
        precondition(total <= TrainingConfiguration.maximumIterations, "the work queue numbers phases with 32 bits")
        let shared = LoopState(capacity: max(total - start, 0), step: rule.step(iteration: start, total: total))
        let state = optimizerState.view
        guard start < total else {
            return TrainingOutcome(stop: .completed, iterationsDone: start, losses: [], trainSeconds: 0, phases: PhaseTimes(), warnings: [])
        }
        // Items and homes are planned for the CPUs' leads, the workers that can run at once (a
        // home on a thread that waits for a CPU would hold its items back).
        let planned = placement.leadCount
        let schedule = Schedule(spec: layout.spec, batchSize: config.batchSize, workers: planned, sparse: sparse)
        // The parameter phase of iteration i stages batch i + `ahead`; the sampler must have
        // prepared that iteration before the phase starts (`BatchSampler.prepare`).
        let ahead = sparse ? 2 : 1
        loader.sampler.prepare(iteration: start)
        // A sparse run's parameter phase runs the next batch's layer one and row phase, and stages
        // the batch after that: for the first batch all of it is done here, and the second staged.
        let node = placement.nodes[0]
        let firstInput = loader.input(node: node)
        backprop.packAll(net, batch, input: firstInput)
        if sparse, case .sparse(let x) = firstInput {
            loader.assemble(iteration: start, rows: 0..<config.batchSize, into: batch, node: node)
            backprop.rowPhase(net, batch, WorkerScratch(layout: layout, batchSize: config.batchSize), rows: 0..<config.batchSize,
                              input: .sparse(x))
            if start + 1 < total {
                loader.sampler.prepare(iteration: start + 1)
                loader.stage(iteration: start + 1, ahead: 1, rows: 0..<config.batchSize, into: batch, node: node)
            }
            if start + 2 < total { loader.sampler.prepare(iteration: start + 2) }
        }
        let oversubscribed = placement.oversubscribed
        let queue = WorkQueue(firstPhaseItems: schedule.phaseItemCounts[0], capacity: schedule.capacity,
                              threads: placement.slots.count, oversubscribed: oversubscribed)
        // Items done per dependency group, counted over the run (`Schedule.Dependency`).
        let progress = ProgressCounters(count: schedule.groupCount, oversubscribed: oversubscribed)
        let net = self.net, loader = self.loader, stopRequest = self.stopRequest, placement = self.placement
        let clock = MonotonicInstant.now
        let times = PhaseLog(workers: placement.slots.count)
        let recorder = trace.map { ItemRecorder(iterations: $0.clamped(to: start..<total),
                                                recordsPerIteration: schedule.phaseItemCounts.reduce(0, +) + schedule.phaseItemCounts.count,  // + a serial step per phase
                                                workers: placement.slots.count) }
        let warnings = WorkerPool.run(placement: placement) { worker in
            let scratch = WorkerScratch(layout: layout, batchSize: config.batchSize)  // first touch on the worker's own node
            let input = loader.input(node: worker.slot.node)
            var mine = PhaseTimes()
            let entered = MonotonicInstant.now
            /// The serial step after `phase` of iteration `i`, begun at `t0`: the next phase's item
            /// count, or nil to end the run.
            func serialStep(_ phase: UInt32, _ i: Int, _ t0: MonotonicInstant) -> Int? {
                guard schedule.endsIteration(phase) else {
                    // Dense input, after the row phase: no worker reads the sampler until the
                    // parameter phase stages the next batch: make its epochs available now.
                    if i + ahead < total { loader.sampler.prepare(iteration: i + ahead) }
                    return schedule.itemCount(after: phase)
                }
                let loss = batch.meanLoss
                shared.losses.append(loss)
                if !loss.isFinite {
                    shared.stop = .diverged(iteration: i + 1, loss: loss)
                    return nil
                }
                do {
                    try report(IterationReport(iteration: i + 1, iterations: total, loss: loss, elapsedSeconds: clock.seconds(until: t0)))
                } catch {
                    shared.stop = .failed("\(error)")
                    return nil
                }
                guard i + 1 < total else { return nil }
                if stopRequest.isSet {
                    shared.stop = .interrupted
                    return nil
                }
                shared.step = rule.step(iteration: i + 1, total: total)
                if sparse {
                    batch.advance()
                    // The next phase stages batch i+3.
                    if i + 1 + ahead < total { loader.sampler.prepare(iteration: i + 1 + ahead) }
                }
                return schedule.itemCount(after: phase)
            }
            // A thread takes the home items of its CPU's lead (`Placement.lead`: itself while
            // workers <= CPUs) as its own, so with more workers than CPUs whichever of a CPU's
            // threads is running works through that CPU's blocks in order and they stay in its
            // caches. When the threads beyond the leads had no home items and took what was left,
            // they took other CPUs' blocks as often as their own, and 8 workers on 2 CPUs ran
            // about 10% slower than under this rule.
            queue.work(worker: placement.lead(of: worker.index), home: schedule.home, ready: { schedule.ready($0, $1, progress) }, execute: { phase, item in
                let (kind, done) = schedule.locate(phase)
                let i = start + done
                // A home item may be taken before the items it waits for are done (ready only
                // tells other threads); every other item passes straight through.
                schedule.waitUntilReady(phase, item, progress)
                let t0 = MonotonicInstant.now
                var reduces = false
                switch schedule.work(phase, item) {
                case .rows(let rows):
                    let batchIteration = i + schedule.rowsAhead
                    guard batchIteration < total else { break }
                    if !sparse { loader.assemble(iteration: batchIteration, rows: rows, into: batch, node: worker.slot.node) }
                    backprop.rowPhase(net, batch, scratch, rows: rows, input: input, layerOneDone: sparse, ahead: schedule.rowsAhead)
                case .slice(let slice):
                    reduces = true
                    backprop.parameterStep(net, batch, scratch, slice: slice, update: rule, step: shared.step, state: state, input: input)
                    // Dense input: bring this item's share of the next batch's images towards the caches.
                    if !sparse && i + 1 < total {
                        let n = schedule.phaseItemCounts[kind]
                        let share = item * config.batchSize / n..<(item + 1) * config.batchSize / n
                        loader.stage(iteration: i + 1, rows: share, into: batch, node: worker.slot.node)
                    }
                case .forward(let block, let rows):
                    guard i + 1 < total, case .sparse(let x) = input else { break }
                    backprop.forwardBlock(net, batch, x, block: block, rows: rows, ahead: 1)
                case .stage(let rows):
                    guard i + ahead < total else { break }
                    loader.stage(iteration: i + ahead, ahead: ahead, rows: rows, into: batch, node: worker.slot.node)
                }
                let t1 = MonotonicInstant.now
                if reduces { mine.reduction += t0.seconds(until: t1) } else { mine.compute += t0.seconds(until: t1) }
                if let recorder, recorder.iterations.contains(i) {
                    recorder.record(worker: worker.index, phase: phase, item: item, start: t0, end: t1)
                }
                schedule.markDone(phase, item, progress)
            }, complete: { phase in
                let t0 = MonotonicInstant.now
                let i = start + schedule.locate(phase).iteration
                let next = serialStep(phase, i, t0)
                let t1 = MonotonicInstant.now
                mine.bookkeeping += t0.seconds(until: t1)
                if let recorder, recorder.iterations.contains(i) {
                    recorder.record(worker: worker.index, phase: phase, item: ItemRecorder.serialStep, start: t0, end: t1)
                }
                return next
            })
            mine.synchronisation = entered.elapsed - mine.compute - mine.reduction - mine.bookkeeping
            times.record(worker.index, mine)
        }
        let seconds = clock.elapsed
        iteration = start + shared.losses.count
        let events = (recorder?.recorded ?? []).map { r in
            let serial = r.item == ItemRecorder.serialStep
            let (name, category) = serial ? ("serial step", "bookkeeping") : schedule.describe(r.phase, Int(r.item))
            return TraceEvent(worker: Int(r.worker), iteration: start + schedule.locate(r.phase).iteration, item: serial ? nil : Int(r.item),
                              name: name, category: category, start: clock.seconds(until: MonotonicInstant(nanoseconds: r.start)),
                              duration: Double(r.end - r.start) * 1e-9)
        }
        return TrainingOutcome(stop: shared.stop, iterationsDone: iteration, losses: shared.losses,
                               trainSeconds: seconds, phases: times.average, warnings: warnings,
                               trace: events.sorted { ($0.start, $0.worker) < ($1.start, $1.worker) })
    }
}

/// What a training loop needs besides its network, set up alike for `Trainer` and `RankTrainer`:
/// layer one's input for the training images (`configuration.input` must resolve for them; the CLI
/// checks `InputChoice.resolve` first), the workers' placement, the loader, and the optimizer's
/// state (`optimizerState`, a resumed run's, or zero).
struct LoopSetup {
    let input: InputEncoding
    let placement: Placement
    let loader: ShardedLoader
    let optimizerState: OptimizerState

    init(configuration: TrainingConfiguration, net: Network, train: LabeledImages, kernels: KernelSet, topology: Topology,
         startIteration: Int, optimizerState: OptimizerState?) {
        let trial = InputTrial(configuration: configuration, kernels: kernels, topology: topology, startIteration: startIteration)
        switch configuration.input.resolve(for: train, trial: trial) {
        case .success(let encoding): input = encoding
        case .failure(let error): preconditionFailure("\(error)")
        }
        let slots = configuration.update.stateSlots
        if let optimizerState {
            precondition(optimizerState.slots == slots && optimizerState.parameterCount == net.layout.count,
                         "the optimizer state does not fit this run's optimizer and network")
        }
        self.optimizerState = optimizerState ?? OptimizerState(slots: slots, parameterCount: net.layout.count)
        placement = Placement(topology: topology, workers: configuration.workers, policy: configuration.placement)
        let sampler = BatchSampler(mode: configuration.sampling, seed: configuration.seed,
                                   sampleCount: train.count, batchSize: configuration.batchSize)
        loader = ShardedLoader(images: train, sampler: sampler, nodes: placement.nodes, placesMemory: placement.placesMemory,
                               kernels: kernels.functions, encoding: input)
    }
}

/// State written only in the work queue's serial step (one thread at a time; publishing the next
/// phase orders the accesses), so no lock is needed.
final class LoopState: @unchecked Sendable {
    var losses: [Float] = []
    var stop: StopReason = .completed
    /// The update's constants for the iteration whose parameter items run next (set in the serial
    /// step that ends the iteration before).
    var step: UpdateStep
    init(capacity: Int, step: UpdateStep) {
        losses.reserveCapacity(capacity)
        self.step = step
    }
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
                          bookkeeping: entries.map(\.bookkeeping).reduce(0, +) / n, exchange: entries.map(\.exchange).reduce(0, +) / n)
    }
}

/// A flag set from any thread and polled in the serial step once per iteration (an atomic load:
/// the serial step is on every worker's critical path, so it takes no lock).
public final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    /// A flag not yet set.
    public init() {}
    /// Asks the run to stop after the current iteration (safe from a signal handler's thread).
    public func set() { value.store(true, ordering: .releasing) }
    /// Whether a stop was asked.
    public var isSet: Bool { value.load(ordering: .acquiring) }
}

