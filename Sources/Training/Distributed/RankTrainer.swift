import Dataset
import Foundation
import Kernels
import Model
import Parallel

/// One rank of a run across processes: its share of every iteration (`RankPlan`) on its own
/// worker threads, and the two exchanges that make the ranks' parameters equal after each update.
///
/// Per iteration, as phases of a `WorkQueue` on the rank's threads (a phase without items is skipped):
///
///     rows        this rank's rows: assemble, forward to the loss and back to every d_l
///                 (`Backprop.rowPhase`); assemble the other rows' inputs where this rank's
///                 parameter items read them (it holds W1 items)
///     serial      row exchange: every rank's loss, z_l and d_l rows reach every rank
///     pack        pack the other ranks' rows of each d_l for the weight-gradient GEMMs
///     parameters  this rank's parameter items: the sums over all B rows in row order, the update,
///                 the repacking of the updated W rows (`Backprop.parameterStep`)
///     serial      parameter exchange: every rank's updated parameters reach every rank
///     repack      repack the W rows the other ranks updated
///     serial      the loss, the report, and the ranks' agreement to go on or stop
///
/// Every gradient element is formed on one rank exactly as one process forms it, so the
/// parameters after every iteration have the bits of the single-process run, for every rank and
/// worker count (docs/reproducibility.md). The collective calls run in the serial steps, on
/// whichever of the rank's threads completes a phase, one at a time.
public final class RankTrainer: TrainingLoop, @unchecked Sendable {
    /// The run, the same on every rank.
    public let configuration: TrainingConfiguration
    /// The parameters, equal on every rank after every iteration.
    public let net: Network
    /// The batches' source (every rank draws the same batches).
    public let loader: ShardedLoader
    /// This rank's kernel variant (every rank must round alike).
    public let kernels: KernelSet
    /// This rank's workers' CPUs.
    public let placement: Placement
    /// Dense pixels or sparse rows, the same on every rank.
    public let input: InputEncoding
    /// The transport between the ranks.
    public let collective: any Collective
    /// Which rows and parameters this rank computes.
    public let plan: RankPlan
    /// Iterations completed.
    public private(set) var iteration: Int
    /// This rank's own parameter ranges are current; the others' only after `collectOptimizerState`.
    public let optimizerState: OptimizerState
    /// Set to stop every rank after the same iteration.
    public let stopRequest = StopFlag()
    /// Whether this rank reports and writes files (rank 0).
    public var isPrimary: Bool { collective.rank == 0 }

    /// One rank of the run `configuration`, continuing `net` from `startIteration`.
    public init(configuration: TrainingConfiguration, net: Network, train: LabeledImages, kernels: KernelSet,
                topology: Topology, collective: any Collective, startIteration: Int = 0, optimizerState: OptimizerState? = nil) {
        precondition(configuration.workers >= 1 && collective.size <= configuration.batchSize)
        let setup = LoopSetup(configuration: configuration, net: net, train: train, kernels: kernels, topology: topology,
                              startIteration: startIteration, optimizerState: optimizerState)
        self.configuration = configuration
        self.net = net
        self.kernels = kernels
        self.collective = collective
        iteration = startIteration
        plan = RankPlan(spec: net.spec, batchSize: configuration.batchSize, ranks: collective.size)
        input = setup.input
        placement = setup.placement
        loader = setup.loader
        self.optimizerState = setup.optimizerState
    }

    /// Makes every rank's optimizer state whole (each rank updates only its own parameters' state):
    /// collective, so every rank calls it at the same point, e.g. before rank 0 writes a checkpoint.
    public func collectOptimizerState() {
        let counts = plan.parameterCounts, displacements = RankPlan.displacements(counts)
        let staging = FloatBuffer(count: net.layout.count)
        for slot in 0..<optimizerState.slots {
            let values = optimizerState.buffer.pointer + slot * optimizerState.parameterCount
            exchange(values, staging: staging.pointer, ranges: plan.parameterRanges, counts: counts, displacements: displacements)
        }
    }

    /// Every rank's `ranges` of `values` to every rank: each packs its own into `staging` at its
    /// displacement, the collective gathers them, and each unpacks the others'.
    private func exchange(_ values: UnsafeMutablePointer<Float>, staging: UnsafeMutablePointer<Float>, ranges: [[Range<Int>]],
                          counts: [Int], displacements: [Int]) {
        let me = collective.rank
        var at = staging + displacements[me]
        for range in ranges[me] {
            at.update(from: values + range.lowerBound, count: range.count)
            at += range.count
        }
        collective.allgather(staging, counts: counts, displacements: displacements)
        for r in 0..<collective.size where r != me {
            var from = UnsafePointer(staging + displacements[r])
            for range in ranges[r] {
                (values + range.lowerBound).update(from: from, count: range.count)
                from += range.count
            }
        }
    }

    private enum Phase: Int, CaseIterable { case rows, pack, parameters, repack }

    private enum Work {
        /// Assemble and run the row phase of these rows (this rank's).
        case rows(Range<Int>)
        /// Assemble these rows of another rank (inputs only).
        case assemble(Range<Int>)
        /// Pack these rows of d_l.
        case pack(layer: Int, rows: Range<Int>)
        case slice(ParameterSlice)
        /// Repack another rank's updated W rows.
        case repack(ParameterSlice)
    }

    /// Trains this rank's share to `configuration.iterations` or a stop agreed by all ranks;
    /// `report` runs on every rank after every iteration. `trace` must be nil: a rank records no
    /// work items (the CLI refuses `--trace` under mpirun).
    public func run(trace: Range<Int>? = nil, report: @escaping @Sendable (IterationReport) throws -> Void = { _ in }) -> TrainingOutcome {
        precondition(trace == nil, "a rank of a run across processes records no trace")
        switch configuration.update {
        case let rule as SGD: return run(rule: rule, report: report)
        case let rule as Momentum: return run(rule: rule, report: report)
        case let rule as Adam: return run(rule: rule, report: report)
        case let rule: return run(rule: rule, report: report)
        }
    }

    private func run<Rule: ParameterUpdate>(rule: Rule, report: @escaping @Sendable (IterationReport) throws -> Void) -> TrainingOutcome {
        let config = configuration, layout = net.layout, spec = net.spec, B = config.batchSize
        let start = iteration, total = config.iterations
        guard start < total else {
            return TrainingOutcome(stop: .completed, iterationsDone: start, losses: [], trainSeconds: 0, phases: PhaseTimes(), warnings: [])
        }
        let me = collective.rank
        let sparse = input == .sparse
        let backprop = Backprop(kernels: kernels.functions, layout: layout)
        let batch = BatchBuffers(layout: layout, batchSize: B, sparseInput: sparse)
        backprop.packAll(net, batch, input: loader.input(node: placement.nodes[0]))
        let planned = placement.leadCount
        // The phases' items, planned once.
        let ownRows = plan.rows[me]
        let rowSize = WorkItemSizes.rowsPerItem(batchSize: max(ownRows.count, 1), workers: planned,
                                                maximumTiles: WorkItemSizes.maximumRowTiles(layout.spec))
        func chunks(_ rows: Range<Int>, _ size: Int) -> [Range<Int>] {
            stride(from: rows.lowerBound, to: rows.upperBound, by: size).map { $0..<min($0 + size, rows.upperBound) }
        }
        var items = [[Work]](repeating: [], count: Phase.allCases.count)
        items[Phase.rows.rawValue] = chunks(ownRows, rowSize).map { .rows($0) }
        if plan.slices[me].contains(where: { $0.layer == 0 && !$0.rows.isEmpty }) {
            let size = max(GEMM.mr, (B - ownRows.count + 2 * planned - 1) / (2 * planned))
            items[Phase.rows.rawValue] += (chunks(0..<ownRows.lowerBound, size) + chunks(ownRows.upperBound..<B, size)).map { .assemble($0) }
        }
        for r in 0..<plan.ranks where r != me && !plan.rows[r].isEmpty {
            for l in 0..<layout.layers.count where l > 0 || !sparse { items[Phase.pack.rawValue].append(.pack(layer: l, rows: plan.rows[r])) }
            for slice in plan.slices[r] where !slice.rows.isEmpty { items[Phase.repack.rawValue].append(.repack(slice)) }
        }
        items[Phase.parameters.rawValue] = plan.slices[me].map { .slice($0) }
        let plannedItems = items
        @Sendable func nextPhase(after phase: Phase?) -> Phase? {
            var k = phase.map { $0.rawValue + 1 } ?? 0
            while k < Phase.allCases.count && plannedItems[k].isEmpty { k += 1 }
            return k < Phase.allCases.count ? Phase(rawValue: k) : nil
        }
        guard let first = nextPhase(after: nil) else { preconditionFailure("every rank runs rows") }

        let rowCounts = plan.rowCounts, rowDisplacements = RankPlan.displacements(rowCounts)
        let parameterCounts = plan.parameterCounts, parameterDisplacements = RankPlan.displacements(parameterCounts)
        let rowStaging = FloatBuffer(count: B * plan.floatsPerRow)
        let parameterStaging = FloatBuffer(count: layout.count)
        let hidden = spec.hidden, widths = Array(spec.widths.dropFirst())
        /// The row exchange: this rank's rows of loss, z_l, d_l out, the others' in.
        @Sendable func exchangeRows() {
            let current = batch.current
            func each(_ rank: Int, _ body: (UnsafeMutablePointer<Float>, Int, UnsafeMutablePointer<Float>) -> Void) {
                let rows = plan.rows[rank]
                var at = rowStaging.pointer + rowDisplacements[rank]
                body(current.loss + rows.lowerBound, rows.count, at)
                at += rows.count
                for (l, h) in hidden.enumerated() { body(current.z(l) + rows.lowerBound * h, rows.count * h, at); at += rows.count * h }
                for (l, h) in widths.enumerated() { body(current.d(l) + rows.lowerBound * h, rows.count * h, at); at += rows.count * h }
            }
            each(me) { tensor, n, staged in staged.update(from: tensor, count: n) }
            collective.allgather(rowStaging.pointer, counts: rowCounts, displacements: rowDisplacements)
            for r in 0..<plan.ranks where r != me { each(r) { tensor, n, staged in tensor.update(from: staged, count: n) } }
        }

        let shared = RankLoopState(capacity: total - start, step: rule.step(iteration: start, total: total), phase: first.rawValue)
        let state = optimizerState.view
        loader.sampler.prepare(iteration: start)
        let capacity = plannedItems.map(\.count).max()!
        let queue = WorkQueue(firstPhaseItems: plannedItems[first.rawValue].count, capacity: capacity,
                              threads: placement.slots.count, oversubscribed: placement.oversubscribed)
        let net = self.net, loader = self.loader, stopRequest = self.stopRequest, collective = self.collective
        let plan = self.plan, placement = self.placement
        let clock = MonotonicInstant.now
        let times = PhaseLog(workers: placement.slots.count)
        let warnings = WorkerPool.run(placement: placement) { worker in
            let scratch = WorkerScratch(layout: layout, batchSize: B)
            let input = loader.input(node: worker.slot.node)
            let node = worker.slot.node
            var mine = PhaseTimes()
            let entered = MonotonicInstant.now
            /// The serial step after the last phase of iteration i: nil ends the run.
            /// Its time counts as bookkeeping, but for the agreement, which counts as exchange.
            func endIteration(_ i: Int, _ t0: MonotonicInstant) -> Phase? {
                var agreement = 0.0
                defer { mine.bookkeeping += t0.seconds(until: MonotonicInstant.now) - agreement }
                let loss = batch.meanLoss
                shared.losses.append(loss)
                var verdict = Agreement.goOn
                if !loss.isFinite {
                    verdict = .diverged  // the same on every rank: every rank holds every row's loss
                } else {
                    do {
                        try report(IterationReport(iteration: i + 1, iterations: total, loss: loss, elapsedSeconds: clock.seconds(until: t0)))
                    } catch {
                        shared.stop = .failed("\(error)")
                        verdict = .failed
                    }
                    if verdict == .goOn && stopRequest.isSet { verdict = .stop }
                }
                // Every rank decides the same, after every iteration (the last one too, so that a
                // rank that failed is never waited for in a later collective).
                let asked = MonotonicInstant.now
                let agreed = Agreement(rawValue: collective.maximum(verdict.rawValue)) ?? .failed
                agreement = asked.seconds(until: MonotonicInstant.now)
                mine.exchange += agreement
                switch agreed {
                case .goOn: break
                case .stop: shared.stop = .interrupted
                case .diverged: shared.stop = .diverged(iteration: i + 1, loss: loss)
                case .failed: if verdict != .failed { shared.stop = .failed(RankTrainer.otherRankFailed + " (its error is in its output)") }
                }
                guard agreed == .goOn || (agreed == .stop && i + 1 == total) else { return nil }
                if agreed == .stop { shared.stop = .completed }
                guard i + 1 < total else { return nil }
                shared.step = rule.step(iteration: i + 1, total: total)
                shared.done += 1
                loader.sampler.prepare(iteration: i + 1)
                return first
            }
            queue.work(worker: placement.lead(of: worker.index), home: { _, _ in nil }, execute: { _, item in
                let i = start + shared.done
                let t0 = MonotonicInstant.now
                var reduces = false
                switch plannedItems[shared.phase][item] {
                case .rows(let rows):
                    loader.assemble(iteration: i, rows: rows, into: batch, node: node)
                    backprop.rowPhase(net, batch, scratch, rows: rows, input: input)
                case .assemble(let rows):
                    loader.assemble(iteration: i, rows: rows, into: batch, node: node)
                case .pack(let l, let rows):
                    GEMM.packB(MatrixView(rowMajor: batch.current.d(l), rows: B, columns: layout.layers[l].outputs),
                               into: batch.current.packedD(l), kRange: rows)
                case .slice(let slice):
                    reduces = true
                    backprop.parameterStep(net, batch, scratch, slice: slice, update: rule, step: shared.step, state: state, input: input)
                case .repack(let slice):
                    let layer = backprop.stack[slice.layer], p = UnsafePointer(net.parameters.pointer)
                    if slice.layer > 0 || !sparse { layer.pack(p, into: batch.packedW(slice.layer), rows: slice.rows) }
                    if slice.layer > 0 { layer.packTransposed(p, into: batch.packedWT(slice.layer), rows: slice.rows) }
                }
                let t1 = MonotonicInstant.now
                if reduces { mine.reduction += t0.seconds(until: t1) } else { mine.compute += t0.seconds(until: t1) }
            }, complete: { _ in
                let t0 = MonotonicInstant.now
                let i = start + shared.done
                let phase = Phase(rawValue: shared.phase)!
                switch phase {
                case .rows: exchangeRows()
                case .parameters:
                    self.exchange(net.parameters.pointer, staging: parameterStaging.pointer, ranges: plan.parameterRanges,
                                  counts: parameterCounts, displacements: parameterDisplacements)
                case .pack, .repack: break
                }
                mine.exchange += t0.seconds(until: MonotonicInstant.now)
                let next = nextPhase(after: phase) ?? endIteration(i, MonotonicInstant.now)
                guard let next else { return nil }
                shared.phase = next.rawValue
                return plannedItems[next.rawValue].count
            })
            mine.synchronisation = entered.elapsed - mine.total
            times.record(worker.index, mine)
        }
        let seconds = clock.elapsed
        iteration = start + shared.losses.count
        return TrainingOutcome(stop: shared.stop, iterationsDone: iteration, losses: shared.losses,
                               trainSeconds: seconds, phases: times.average, warnings: warnings)
    }

    /// How a rank's outcome begins when another rank's failure stopped the run.
    public static let otherRankFailed = "another rank failed"

    /// What a rank proposes after an iteration; the ranks take the largest.
    private enum Agreement: Int { case goOn = 0, stop = 1, diverged = 2, failed = 3 }
}

/// The rank's loop state, written only in the work queue's serial step (publishing the next phase
/// orders the accesses, as for `LoopState`).
final class RankLoopState: @unchecked Sendable {
    var losses: [Float] = []
    var stop: StopReason = .completed
    var step: UpdateStep
    /// The phase whose items run now (`RankTrainer.Phase`), and iterations done in this run.
    var phase: Int
    var done = 0
    init(capacity: Int, step: UpdateStep, phase: Int) {
        losses.reserveCapacity(capacity)
        self.step = step
        self.phase = phase
    }
}
