import Kernels
import Model

/// The two phases of one training iteration, the work items of each, and each item's home worker
/// (`WorkQueue` runs an item on its home worker while that worker keeps up).
///
///     rows        dense input: assemble and normalize the rows, the whole forward, dy, da1
///                 sparse input: z1 = σ(Σ blocks + b1), the rest of the forward, dy, da1
///     parameters  dW1, dW2, db1, db2 summed over all rows in row order (the reduction), θ ← θ − η·g;
///                 dense input: prefetch the next batch's images
///                 sparse input: x·W1 of the next batch, per input k-block (`forward` items), and
///                 stage the batch after it (indices, labels, block offsets; prefetch its images)
///
/// With a sparse input each input k-block of W1 (two for 784 inputs, `GEMM.kBlock`) is dealt to a
/// group of workers: its parameter items sum and update those W1 rows, and its forward items then
/// multiply the next batch by them. With 2 workers each owns one half of W1 and never has it taken
/// away by the other core; a forward item waits (`ProgressCounters`) until its block's updates are
/// done, so layer one needs no phase of its own. Row items, the W2 and bias items and the staging
/// items have no home: whichever worker is done with its own items first takes them, which evens
/// out the blocks' unequal work (MNIST's upper half holds 71 of an image's 150 non-zero pixels,
/// the lower half 79) and CPUs that run at unequal speeds (a shared virtual machine's often do).
/// Only then does a worker take another's forward items, which costs the most (it reads that
/// block of W1 from the other core). None of this changes a result, only where it is computed.
struct Schedule {
    enum Phase { case rows, parameters }

    /// A parameter-phase item.
    enum ParameterWork {
        /// Reduce and update a slice; `blocks`: the input k-blocks its W1 rows overlap (empty: no
        /// W1 rows). A slice of 56 rows can straddle two k-blocks when their edges are not multiples
        /// of 56 (1,100 inputs: 0..<366, 366..<733, 733..<1100); it counts toward each.
        case slice(ParameterSlice, blocks: Range<Int>)
        /// Sparse input: x·W1 over input k-block `block` for these rows of the next batch.
        case forward(block: Int, rows: Range<Int>)
        /// Sparse input: stage these rows of the batch after the next one (`ShardedLoader.stage`).
        case stage(rows: Range<Int>)
    }

    static let phases: [Phase] = [.rows, .parameters]

    let rowItems: [Range<Int>]
    let parameterItems: [ParameterWork]
    /// Per input k-block: how many parameter items update some of its W1 rows (what its forward
    /// items wait for).
    let w1ItemsPerBlock: [Int]
    private let homes: [[Int?]]

    /// Rows per row-phase item: one register tile of the GEMM (`GEMM.mr`).
    static let rowsPerItem = GEMM.mr
    /// Rows per forward item (one k-block of x·W1): about 5 µs of work for MNIST, small enough
    /// that a worker done with its own block can take the rest of a slower worker's.
    static let forwardRowsPerItem = 10

    init(shape: NetworkShape, batchSize: Int, workers: Int, sparse: Bool) {
        let blocks = GEMM.kBlockCount(shape.input)
        let groupCount = min(blocks, workers)
        let groups = (0..<groupCount).map { Array(stride(from: $0, to: workers, by: groupCount)) }
        func group(ofBlock b: Int) -> [Int] { groups[b % groupCount] }

        /// 0..<batchSize in consecutive ranges of `size` rows (the last one shorter).
        func batchRows(by size: Int) -> [Range<Int>] {
            stride(from: 0, to: batchSize, by: size).map { $0..<min($0 + size, batchSize) }
        }

        rowItems = batchRows(by: Self.rowsPerItem)

        // Parameter items: per k-block the W1 slices that start in it, then (sparse) its forward
        // items; then the rest.
        // Each slice with the k-blocks its W1 rows overlap (empty for W2 and the biases).
        let slices = ParameterSlice.blocks(shape).map { slice in
            let overlapping = (0..<blocks).filter { GEMM.kBlock($0, of: shape.input).overlaps(slice.w1Rows) }
            return (slice, (overlapping.first ?? 0)..<(overlapping.last.map { $0 + 1 } ?? 0))
        }
        var items: [ParameterWork] = [], itemHomes: [Int?] = [], perBlock = [Int](repeating: 0, count: blocks)
        var homed = [Int](repeating: 0, count: blocks)
        let forwardRows = batchRows(by: Self.forwardRowsPerItem)
        for b in 0..<blocks {
            for (slice, overlapped) in slices where overlapped.first == b {
                items.append(.slice(slice, blocks: overlapped))
                itemHomes.append(group(ofBlock: b)[homed[b] % group(ofBlock: b).count])
                homed[b] += 1
                for o in overlapped { perBlock[o] += 1 }
            }
            guard sparse else { continue }
            for (c, rows) in forwardRows.enumerated() {
                items.append(.forward(block: b, rows: rows))
                // The group's workers take contiguous runs of rows (worker g of the group: the g-th share).
                itemHomes.append(group(ofBlock: b)[c * group(ofBlock: b).count / forwardRows.count])
            }
        }
        for (slice, overlapped) in slices where overlapped.isEmpty {
            items.append(.slice(slice, blocks: overlapped))
            itemHomes.append(nil)
        }
        let shares = sparse ? min(8, batchSize) : 0
        for c in 0..<shares {
            items.append(.stage(rows: c * batchSize / shares..<(c + 1) * batchSize / shares))
            itemHomes.append(nil)
        }
        parameterItems = items
        w1ItemsPerBlock = perBlock
        homes = [[Int?](repeating: nil, count: rowItems.count), itemHomes]
    }

    /// The kind of queue phase `phase` and the iteration (counted from the run's start) it belongs to.
    func locate(_ phase: UInt32) -> (phase: Phase, iteration: Int) {
        let p = Int(phase)
        return (Self.phases[p % Self.phases.count], p / Self.phases.count)
    }

    func itemCount(_ phase: Phase) -> Int {
        switch phase {
        case .rows: return rowItems.count
        case .parameters: return parameterItems.count
        }
    }

    /// The item count of the phase that follows queue phase `phase` (what the serial step returns).
    func itemCount(after phase: UInt32) -> Int { itemCount(locate(phase &+ 1).phase) }

    func home(_ phase: UInt32, _ item: Int) -> Int? { homes[Int(phase) % Self.phases.count][item] }

    /// The most items of any phase (the work queue's capacity).
    var capacity: Int { Self.phases.map(itemCount).max()! }
}
