import Kernels
import Model

/// A part of the parameter vector that one work item of the parameter phase reduces (sums its
/// gradient over the batch) and updates: rows of one layer's W, and/or every bias.
///
/// Plain values only: the schedule's tables of work items are read by every worker for every
/// item, and a value holding a reference would be retained and released on each read.
public struct ParameterSlice: Equatable, Sendable {
    /// The affine layer (0-based) whose weight rows `rows` are.
    public var layer: Int
    /// Rows of that layer's W (its inputs); empty for a bias-only slice.
    public var rows: Range<Int>
    /// Whether this slice also covers every layer's bias.
    public var biases: Bool

    /// Rows `rows` of layer `layer`'s W, or with `biases` its b.
    public init(layer: Int, rows: Range<Int>, biases: Bool = false) {
        self.layer = layer
        self.rows = rows
        self.biases = biases
    }

    /// Every bias and no weights.
    public static let biasesOnly = ParameterSlice(layer: 0, rows: 0..<0, biases: true)

    /// The rows of layer 0's W (W1) this slice covers.
    public var firstLayerRows: Range<Int> { layer == 0 ? rows : 0..<0 }

    /// Everything, one slice per layer (the single-threaded case).
    public static func all(_ spec: NetworkSpec) -> [ParameterSlice] {
        (0..<spec.layerCount).map { ParameterSlice(layer: $0, rows: 0..<spec.widths[$0]) } + [biasesOnly]
    }

    /// The parameter phase's work items: W1 in blocks of `rows` rows, each other W in blocks of
    /// `rowsPerItem(layer:)` rows, then the biases.
    ///
    /// 56 rows of W1 (`SparseRows.blockWidth`, so a sparse item finds its pixels through the block
    /// table) are about 1 MFLOP dense for the default run: large enough that taking an item costs
    /// nothing, small enough (16 items) to balance 2 to 16 workers. The other layers' items are
    /// sized to about the same work.
    public static func blocks(_ spec: NetworkSpec, rows: Int = SparseRows.blockWidth) -> [ParameterSlice] {
        precondition(rows > 0)
        var slices: [ParameterSlice] = []
        for layer in 0..<spec.layerCount {
            let size = layer == 0 ? rows : rowsPerItem(spec, layer: layer, firstLayerRows: rows)
            for start in stride(from: 0, to: spec.widths[layer], by: size) {
                slices.append(ParameterSlice(layer: layer, rows: start..<min(start + size, spec.widths[layer])))
            }
        }
        return slices + [biasesOnly]
    }

    /// Rows per item of layer `layer` >= 1: the rows whose gradient costs about what `firstLayerRows`
    /// rows of W1 cost (rows · outputs multiply-adds per batch row), rounded up to whole panels of
    /// `GEMM.nr`, because the item that updates them also repacks them as columns of the packed Wᵀ
    /// (`Affine.packTransposed`). For the lecture's 100 x 10 W2 that is one item, as the W2 item
    /// always was: it is 2% of an iteration's work.
    public static func rowsPerItem(_ spec: NetworkSpec, layer: Int, firstLayerRows: Int = SparseRows.blockWidth) -> Int {
        let target = max(1, firstLayerRows * spec.widths[1] / spec.widths[layer + 1])
        return (target + GEMM.nr - 1) / GEMM.nr * GEMM.nr
    }
}
