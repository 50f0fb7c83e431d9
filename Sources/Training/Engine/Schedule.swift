import Kernels
import Model
import Parallel

/// The phases of one training iteration, the work items of each, each item's home worker
/// (`WorkQueue` runs an item on its home worker while that worker keeps up), and the items each
/// item waits for inside its phase.
///
///     sparse input, one phase per iteration i:
///         W1 items        dW1 summed over all rows of batch i in row order (the reduction) and
///                         W1 ← W1 − η·dW1, per input k-block, in slices of 56 rows
///         forward items   x·W1 of batch i+1 per input k-block, once that block's W1 items are done
///         W2.., bias items the same for the other layers' W (each item repacks its rows for the
///                         row items) and every bias
///         row items       batch i+1: z1 = σ(Σ blocks + b1), a2, loss, dy, da1, once the forward
///                         items of their rows and the other layers' W and bias items are done
///         stage items     the indices, labels and block offsets of batch i+2; prefetch its images
///     dense input, two phases per iteration i:
///         rows            assemble and normalize batch i's rows, the whole forward, dy, da1
///         parameters      the reduction and update (each W item repacks its rows), biases;
///                         prefetch the next batch's images
///
/// With a sparse input each input k-block of W1 (two for 784 inputs, `GEMM.kBlock`) is dealt to a
/// group of workers: its W1 items sum and update those W1 rows, and its forward items then
/// multiply the next batch by them. With 2 workers each owns one half of W1 and never has it taken
/// away by the other core. The other layers' W items, the bias, row and staging items have no home: whichever worker is
/// done with its own items first takes them, which evens out the blocks' unequal work (MNIST's
/// upper half holds 71 of an image's 150 non-zero pixels, the lower half 79) and CPUs that run at
/// unequal speeds (a shared virtual machine's often do). Only then does a worker take another's
/// forward items, which costs the most (it reads that block of W1 from the other core).
///
/// Why the next batch's row items run inside this batch's parameter phase: every phase ends with
/// the workers waiting for the last item; one phase per iteration instead of two halves that wait,
/// and the row items (about a quarter of an iteration, no home) fill the time in which one worker
/// would otherwise wait for the other's last forward items. None of this changes a result, only
/// where and when it is computed (docs/reproducibility.md).
struct Schedule {
    /// One work item.
    enum Work {
        /// Forward to the loss and back to da1 for these rows of the batch `rowsAhead` after the
        /// phase's iteration.
        case rows(Range<Int>)
        /// Reduce and update a slice of the parameters.
        case slice(ParameterSlice)
        /// Sparse input: x·W1 over input k-block `block` for these rows of the next batch.
        case forward(block: Int, rows: Range<Int>)
        /// Sparse input: stage these rows of the batch after the next one (`ShardedLoader.stage`).
        case stage(rows: Range<Int>)
    }

    /// An item waits until `group` (a `ProgressCounters` group) has counted `perIteration` more
    /// items in this iteration: a target of `perIteration`·(iterations so far, this one included).
    struct Dependency {
        let group: Int
        let perIteration: Int
    }

    /// The item count of each phase of an iteration.
    let phaseItemCounts: [Int]
    /// How many `ProgressCounters` groups the dependencies use.
    let groupCount: Int
    /// The row items compute the batch this many iterations after the phase's own: 0 for a dense
    /// input (a phase before the parameter phase), 1 for a sparse one (inside the batch before's).
    let rowsAhead: Int
    // Flat tables, item k of phase p at phaseStart[p] + k (the workers read them for every item
    // they consider; flat arrays of plain values are read without reference counting, which
    // nested arrays are not).
    private let phaseStart: [Int]
    private let works: [Work]
    private let homes: [Int?]
    /// Per item: its range of `dependencies` (what it waits for) and of `countedGroups` (what it
    /// counts toward when done).
    private let waitRanges: [Range<Int>]
    private let dependencies: [Dependency]
    private let countRanges: [Range<Int>]
    private let countedGroups: [Int]

    init(spec: NetworkSpec, batchSize: Int, workers: Int, sparse: Bool) {
        let blocks = GEMM.kBlockCount(spec.input)
        let workerGroups = min(blocks, workers)
        let groups = (0..<workerGroups).map { Array(stride(from: $0, to: workers, by: workerGroups)) }
        func group(ofBlock b: Int) -> [Int] { groups[b % workerGroups] }

        /// 0..<batchSize in consecutive ranges of `size` rows (the last one shorter).
        func batchRows(by size: Int) -> [Range<Int>] {
            stride(from: 0, to: batchSize, by: size).map { $0..<min($0 + size, batchSize) }
        }
        let rowItems = batchRows(by: WorkItemSizes.rowsPerItem(batchSize: batchSize, workers: workers,
                                                                maximumTiles: WorkItemSizes.maximumRowTiles(spec)))
        let forwardRows = batchRows(by: WorkItemSizes.forwardRowsPerItem(batchSize: batchSize, groupWorkers: groups.map(\.count).max()!))

        // Progress groups (sparse input): 0..<blocks, W1 items done per k-block (its forward items
        // wait for them); then one per forward item (block b, item c: blocks + b·F + c); then the
        // other layers' W items and the bias item (the row items wait for these and for the forward items of their rows).
        func forwardGroup(_ b: Int, _ c: Int) -> Int { blocks + b * forwardRows.count + c }
        let rowInputs = blocks + blocks * forwardRows.count

        // Each slice with the k-blocks its W1 rows overlap (empty for the other layers and the biases). A slice of
        // 56 rows can straddle two k-blocks when their edges are not multiples of 56 (1,100 inputs:
        // 0..<366, 366..<733, 733..<1100); it counts toward each, and both blocks' forward items wait for it.
        let slices = ParameterSlice.blocks(spec).map { slice in
            let overlapping = (0..<blocks).filter { GEMM.kBlock($0, of: spec.input).overlaps(slice.firstLayerRows) }
            return (slice, (overlapping.first ?? 0)..<(overlapping.last.map { $0 + 1 } ?? 0))
        }
        var works: [Work] = [], homes: [Int?] = [], waitRanges: [Range<Int>] = [], dependencies: [Dependency] = []
        var countRanges: [Range<Int>] = [], countedGroups: [Int] = []
        func add(_ work: Work, home: Int?, waits: [Dependency] = [], counts: [Int] = []) {
            works.append(work)
            homes.append(home)
            // A dense input's items wait for nothing inside a phase.
            let waits = sparse ? waits : [], counts = sparse ? counts : []
            waitRanges.append(dependencies.count..<dependencies.count + waits.count)
            dependencies += waits
            countRanges.append(countedGroups.count..<countedGroups.count + counts.count)
            countedGroups += counts
        }
        if !sparse { for rows in rowItems { add(.rows(rows), home: nil) } }
        // Per k-block the W1 slices that start in it, then (sparse) its forward items; then the rest.
        var w1ItemsPerBlock = [Int](repeating: 0, count: blocks)
        for (_, overlapped) in slices { for o in overlapped { w1ItemsPerBlock[o] += 1 } }
        var homed = [Int](repeating: 0, count: blocks)
        for b in 0..<blocks {
            for (slice, overlapped) in slices where overlapped.first == b {
                add(.slice(slice), home: group(ofBlock: b)[homed[b] % group(ofBlock: b).count],
                    counts: Array(overlapped))
                homed[b] += 1
            }
            guard sparse else { continue }
            for (c, rows) in forwardRows.enumerated() {
                // The group's workers take contiguous runs of rows (worker g of the group: the g-th share).
                add(.forward(block: b, rows: rows), home: group(ofBlock: b)[c * group(ofBlock: b).count / forwardRows.count],
                    waits: [Dependency(group: b, perIteration: w1ItemsPerBlock[b])], counts: [forwardGroup(b, c)])
            }
        }
        let rest = slices.filter { $0.1.isEmpty }
        for (slice, _) in rest { add(.slice(slice), home: nil, counts: [rowInputs]) }
        if sparse {
            for rows in rowItems {
                let forwards = (0..<blocks).flatMap { b in
                    forwardRows.indices.filter { forwardRows[$0].overlaps(rows) }.map { Dependency(group: forwardGroup(b, $0), perIteration: 1) }
                }
                add(.rows(rows), home: nil, waits: [Dependency(group: rowInputs, perIteration: rest.count)] + forwards)
            }
            let shares = min(8, batchSize)
            for c in 0..<shares { add(.stage(rows: c * batchSize / shares..<(c + 1) * batchSize / shares), home: nil) }
        }
        phaseItemCounts = sparse ? [works.count] : [rowItems.count, works.count - rowItems.count]
        phaseStart = sparse ? [0] : [0, rowItems.count]
        groupCount = sparse ? rowInputs + 1 : 0
        rowsAhead = sparse ? 1 : 0
        self.works = works
        self.homes = homes
        self.waitRanges = waitRanges
        self.dependencies = dependencies
        self.countRanges = countRanges
        self.countedGroups = countedGroups
    }

    /// The index in `phaseItemCounts` of queue phase `phase` and the iteration (counted from the
    /// run's start) it belongs to.
    func locate(_ phase: UInt32) -> (kind: Int, iteration: Int) {
        let p = Int(phase)
        return (p % phaseItemCounts.count, p / phaseItemCounts.count)
    }

    private func index(_ phase: UInt32, _ item: Int) -> Int { phaseStart[Int(phase) % phaseStart.count] + item }

    func work(_ phase: UInt32, _ item: Int) -> Work { works[index(phase, item)] }

    /// A name for `item` of queue phase `phase` and the phase time it counts toward ("compute" or
    /// "reduction"), for traces (`TraceEvent`).
    func describe(_ phase: UInt32, _ item: Int) -> (name: String, category: String) {
        func span(_ r: Range<Int>) -> String { "\(r.lowerBound)..<\(r.upperBound)" }
        switch work(phase, item) {
        case .rows(let rows): return ("rows \(span(rows))", "compute")
        case .forward(let block, let rows): return ("x·W1 block \(block), rows \(span(rows))", "compute")
        case .stage(let rows): return ("stage rows \(span(rows))", "compute")
        case .slice(let slice):
            var parts: [String] = []
            if !slice.rows.isEmpty { parts.append("W\(slice.layer + 1) rows \(span(slice.rows))") }
            if slice.biases { parts.append("biases") }
            return (parts.joined(separator: ", "), "reduction")
        }
    }

    func home(_ phase: UInt32, _ item: Int) -> Int? { homes[index(phase, item)] }

    /// Whether the items that `item` of queue phase `phase` waits for are done (`progress` counts
    /// the groups over the run: a target of perIteration·(iterations so far, this one included)).
    func ready(_ phase: UInt32, _ item: Int, _ progress: ProgressCounters) -> Bool {
        let done = locate(phase).iteration + 1
        for d in waitRanges[index(phase, item)] where !progress.reached(dependencies[d].group, dependencies[d].perIteration * done) {
            return false
        }
        return true
    }

    /// Returns once the items that `item` of queue phase `phase` waits for are done.
    func waitUntilReady(_ phase: UInt32, _ item: Int, _ progress: ProgressCounters) {
        let done = locate(phase).iteration + 1
        for d in waitRanges[index(phase, item)] { progress.wait(dependencies[d].group, until: dependencies[d].perIteration * done) }
    }

    /// Counts `item` of queue phase `phase` as done toward the groups that wait for it.
    func markDone(_ phase: UInt32, _ item: Int, _ progress: ProgressCounters) {
        for c in countRanges[index(phase, item)] { progress.add(countedGroups[c]) }
    }

    /// Whether queue phase `phase` is the last of its iteration (the one that updates the parameters).
    func endsIteration(_ phase: UInt32) -> Bool { locate(phase).kind == phaseItemCounts.count - 1 }

    /// The item count of the phase that follows queue phase `phase` (what the serial step returns).
    func itemCount(after phase: UInt32) -> Int { phaseItemCounts[locate(phase &+ 1).kind] }

    /// The most items of any phase (the work queue's capacity).
    var capacity: Int { phaseItemCounts.max()! }
}

/// The sizes of the engine's work items (`Schedule`), public so that the benchmarks' scaling model
/// (Benchmarks/Sources/ptrain-bench/ScalingModel.swift) splits an iteration as the engine does.
/// Which thread runs which rows never changes a result, so neither do these sizes
/// (docs/reproducibility.md).
public enum WorkItemSizes {
    /// Rows per row item for `workers` planned workers: about three items per worker, so that a
    /// worker done early has some to take, in whole register tiles of the GEMM (`GEMM.mr`), and at
    /// most three tiles (18 rows, about 4 µs of work for MNIST).
    ///
    /// Why not one tile per item: every item costs a claim and a completion count, atomics on
    /// lines the other workers read, and on a virtual machine whose vCPUs the host may place on
    /// cores that share no cache, each such atomic can wait for a round trip between them
    /// (`CoreRoundTrip`: several hundred nanoseconds instead of about 100). With 2 workers, 18-row
    /// row items and 25-row forward items (38 items per iteration instead of 61) take less time in
    /// both states, most in the slow one.
    ///
    /// A wide network (`maximumRowTiles`) allows items of up to 8 tiles: each row item reads every
    /// W of the network, and from a few megabytes of W per 18 rows that read, not the arithmetic,
    /// would set the row phase's speed.
    public static func rowsPerItem(batchSize: Int, workers: Int, maximumTiles: Int = narrowRowTiles) -> Int {
        let share = (batchSize + 3 * workers - 1) / (3 * workers)
        return min(maximumTiles, max(1, (share + GEMM.mr - 1) / GEMM.mr)) * GEMM.mr
    }

    /// The most register tiles a row item of `spec`'s network holds: 3 while every layer's W has
    /// fewer than 128 K weights (512 KB, so it stays in a core's L2 from one item to the next), 8
    /// (48 rows, `GEMM.panelOuterRows`) for a wider network, whose row items then read each W once
    /// per 48 rows (`rowsPerPass`).
    public static func maximumRowTiles(_ spec: NetworkSpec) -> Int {
        ParameterLayout(spec).layers.contains { $0.inputs * $0.outputs >= 128 * 1024 } ? GEMM.panelOuterRows / GEMM.mr : narrowRowTiles
    }

    /// The most register tiles per row item of a narrow network (18 rows).
    public static let narrowRowTiles = 3

    /// Rows the row phase computes per pass through the layers (`Backprop.rowPhase`): one register
    /// tile for a narrow network, where W stays in cache and small passes keep few written lines
    /// waiting; a whole item of a wide one, so the pass's GEMMs read each W once.
    public static func rowsPerPass(_ spec: NetworkSpec) -> Int {
        let tiles = maximumRowTiles(spec)
        return (tiles == narrowRowTiles ? 1 : tiles) * GEMM.mr
    }

    /// Rows per forward item (one k-block of x·W1) when `groupWorkers` workers share a k-block:
    /// about four items per worker of the group, so a worker done with its own block can take the
    /// rest of a slower worker's, and at most 25 rows (about 6 µs of work for MNIST).
    public static func forwardRowsPerItem(batchSize: Int, groupWorkers: Int) -> Int {
        min(25, max(1, (batchSize + 4 * groupWorkers - 1) / (4 * groupWorkers)))
    }
}
