import Kernels
import Model

/// The phases of one training iteration, the work items of each, and each item's home worker
/// (`WorkQueue` runs an item on its home worker while that worker keeps up).
///
/// Dense input, two phases:   rows (assemble, forward, dy, da1) -> parameters (reduce, update,
///                            prefetch the next batch)
/// Sparse input, three:       layer one (x·W1 by input k-block; stage the next batch) -> rows
///                            (the rest of the forward, dy, da1) -> parameters (reduce, update)
///
/// Homes follow the data each item writes. With a sparse input, the input k-blocks of x·W1 (two
/// for 784 inputs, `GEMM.kBlock`) are dealt to groups of workers, and the parameter items that
/// sum and update those W1 rows go to the same group: with 2 workers each owns one half of W1,
/// reads it forward, updates it backward, and never has it taken away by the other core. Row
/// items and the parameter items that are not W1 (W2, biases) have no home: whichever worker is
/// done with its own items first takes them, which evens out the blocks' unequal work (MNIST's
/// upper half holds 71 of an image's 150 non-zero pixels, the lower half 79). None of this
/// changes a result, only where it is computed.
struct Schedule {
    enum Phase { case layerOne, rows, parameters }

    let phases: [Phase]
    /// Layer-one items: an input k-block and a range of batch rows.
    let layerOneItems: [(block: Int, rows: Range<Int>)]
    /// Sparse input: after the layer-one items, these shares of the next batch's rows are staged
    /// (`ShardedLoader.stage`) in the same phase, by whichever worker finished its block first;
    /// the last staging item also packs W2 for the row phase (`Backprop.prepareRowPhase`).
    /// Dense input: each parameter item stages its share of the next batch (prefetch only).
    let stagingItems: [Range<Int>]
    let rowItems: [Range<Int>]
    let parameterItems: [ParameterSlice]
    private let homes: [[Int?]]

    /// Rows per row-phase item: one register tile of the GEMM (`GEMM.mr`).
    static let rowsPerItem = GEMM.mr
    /// Rows per layer-one item (one k-block of x·W1): about 5 µs of work for MNIST, small enough
    /// that a worker done with its own block can take the rest of a slower worker's.
    static let layerOneRowsPerItem = 10

    init(shape: NetworkShape, batchSize: Int, workers: Int, sparse: Bool) {
        let blocks = GEMM.kBlockCount(shape.input)
        let groupCount = min(blocks, workers)
        let groups = (0..<groupCount).map { Array(stride(from: $0, to: workers, by: groupCount)) }
        func group(ofBlock b: Int) -> [Int] { groups[b % groupCount] }

        /// 0..<batchSize in consecutive ranges of `size` rows (the last one shorter).
        func batchRows(by size: Int) -> [Range<Int>] {
            stride(from: 0, to: batchSize, by: size).map { $0..<min($0 + size, batchSize) }
        }

        var layerOne: [(block: Int, rows: Range<Int>)] = [], layerOneHomes: [Int?] = []
        if sparse {
            let rows = batchRows(by: Self.layerOneRowsPerItem)
            for b in 0..<blocks {
                let group = group(ofBlock: b)
                // The group's workers take contiguous runs of rows (worker g of the group: the g-th share).
                for (c, range) in rows.enumerated() {
                    layerOne.append((b, range))
                    layerOneHomes.append(group[c * group.count / rows.count])
                }
            }
        }
        layerOneItems = layerOne
        let shares = sparse ? min(8, batchSize) : 0
        stagingItems = (0..<shares).map { $0 * batchSize / shares..<($0 + 1) * batchSize / shares }
        layerOneHomes += [Int?](repeating: nil, count: shares)
        let rows = batchRows(by: Self.rowsPerItem)
        rowItems = rows
        let rowHomes = [Int?](repeating: nil, count: rows.count)
        let slices = ParameterSlice.blocks(shape)
        parameterItems = slices
        var parameterHomes: [Int?] = [], perBlock = [Int](repeating: 0, count: blocks)
        for slice in slices {
            if let k = slice.w1Rows.first {
                let b = (0..<blocks).first { GEMM.kBlock($0, of: shape.input).contains(k) }!
                parameterHomes.append(group(ofBlock: b)[perBlock[b] % group(ofBlock: b).count])
                perBlock[b] += 1
            } else {
                parameterHomes.append(nil)
            }
        }
        phases = sparse ? [.layerOne, .rows, .parameters] : [.rows, .parameters]
        homes = (sparse ? [layerOneHomes] : []) + [rowHomes, parameterHomes]
    }

    /// The kind of queue phase `phase` and the iteration (counted from the run's start) it belongs to.
    func locate(_ phase: UInt32) -> (phase: Phase, index: Int, iteration: Int) {
        let p = Int(phase)
        return (phases[p % phases.count], p % phases.count, p / phases.count)
    }

    func itemCount(_ phase: Phase) -> Int {
        switch phase {
        case .layerOne: return layerOneItems.count + stagingItems.count
        case .rows: return rowItems.count
        case .parameters: return parameterItems.count
        }
    }

    /// The item count of the phase that follows queue phase `phase` (what the serial step returns).
    func itemCount(after phase: UInt32) -> Int {
        itemCount(phases[(locate(phase).index + 1) % phases.count])
    }

    func home(_ phase: UInt32, _ item: Int) -> Int? { homes[locate(phase).index][item] }

    /// The most items of any phase (the work queue's capacity).
    var capacity: Int { phases.map(itemCount).max()! }
}
