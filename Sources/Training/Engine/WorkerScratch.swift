import Kernels
import Model

/// Scratch private to one worker thread (allocated once, on the worker's NUMA node by first touch).
public final class WorkerScratch: @unchecked Sendable {
    /// The GEMM's edge-tile packing buffer.
    public let packA: FloatBuffer
    /// The sparse path's dW1 accumulator: `SparseRows.blockWidth` rows of `sparseStride` floats,
    /// twice when the batch spans several GEMM k-blocks (one more sum per block, added in order).
    public let sparseAccumulator: FloatBuffer
    /// Floats per row of the sparse kernels' accumulators.
    public let sparseStride: Int
    /// One pass of the row phase, `passRows` rows: every hidden layer's z and d, the logits and dy,
    /// computed here and then copied to the batch's buffers (`Backprop.rowPhase` says why).
    let tile: BufferTable
    /// Rows per pass of the row phase (`WorkItemSizes.rowsPerPass`).
    public let passRows: Int
    let layers: Int

    /// `batchSize` sizes the sparse accumulator (one sum per GEMM k-block of the batch).
    public init(layout: ParameterLayout, batchSize: Int = 1) {
        let layers = layout.layers
        self.layers = layers.count
        packA = FloatBuffer(count: GEMM.packAScratchCount)
        sparseStride = (layers[0].outputs + 7) / 8 * 8
        let copies = GEMM.kBlockCount(batchSize) > 1 ? 2 : 1
        sparseAccumulator = FloatBuffer(count: SparseRows.blockWidth * sparseStride * copies)
        // z_l (l < L − 1), d_l (l < L), then the logits.
        let rows = WorkItemSizes.rowsPerPass(layout.spec)
        passRows = rows
        tile = BufferTable(counts: layers.dropLast().map { rows * $0.outputs } + layers.map { rows * $0.outputs }
            + [rows * layers.last!.outputs])
    }

    deinit { tile.deallocate() }

    var z: UnsafeMutablePointer<UnsafeMutablePointer<Float>> { tile.pointers }
    var d: UnsafeMutablePointer<UnsafeMutablePointer<Float>> { tile.pointers + (layers - 1) }
    var logits: UnsafeMutablePointer<Float> { tile[2 * layers - 1] }
}
