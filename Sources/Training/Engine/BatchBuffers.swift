import Kernels
import Model

/// Where layer 1 reads a batch's inputs.
public enum BatchInput: @unchecked Sendable {
    /// `BatchBuffers.x` holds the normalized rows (the loader assembles them); the products with
    /// W1 are dense GEMMs.
    case dense
    /// Row r of the batch is row `BatchBuffers.sampleIndices[r]` of these sparse rows (found through
    /// `BatchBuffers.entryOffsets`); the products with W1 skip the zero pixels (`SparseKernels`) and
    /// give the dense path's bits.
    case sparse(SparseRows)

    public var isSparse: Bool {
        if case .sparse = self { return true }
        return false
    }
}

/// A fixed table of raw float buffers, freed with its owner: the engine's per-layer buffers, read
/// by index on hot paths without counting references.
struct BufferTable {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let count: Int

    init(counts: [Int]) {
        count = counts.count
        pointers = .allocate(capacity: max(count, 1))
        for (i, n) in counts.enumerated() { (pointers + i).initialize(to: FloatBuffer.allocate(count: n)) }
    }

    @inline(__always) subscript(i: Int) -> UnsafeMutablePointer<Float> { pointers[i] }

    func deallocate() {
        for i in 0..<count { FloatBuffer.deallocate(pointers[i]) }
        pointers.deallocate()
    }
}

/// Per-batch buffers shared by all workers of a step. Rows are written by the worker that runs
/// their item in the row phase; the parameter phase reads all rows after they are all written.
///
/// Shapes (B = batch size, I = input, H_l = layer l's outputs, L affine layers, O = classes):
/// x (B, I); per held batch (`BatchRows`): labels (B), loss (B), z_l (B, H_l) for each hidden
/// layer, d_l (B, H_l) for every layer (d of the output layer is dy, (B, O)), and d_l packed as a
/// GEMM B-operand (k = B) for the weight gradients; packed W_l (k = inputs) for the forward products
/// and packed W_lᵀ (k = outputs) for the backward ones, each refreshed by whoever updates W_l's rows.
/// A sparse input reads neither x, packed W_1 nor packed d_1 (they are empty), and W_1ᵀ is never needed.
public final class BatchBuffers: @unchecked Sendable {
    public let layout: ParameterLayout
    public let batchSize: Int
    public let x: FloatBuffer
    /// The current batch's labels, sample indices, block offsets and row-phase results, then the
    /// batches staged ahead of it (`ahead` 1 and 2): the sparse engine fills batch i+2 while batch
    /// i's parameter phase reads batch i's rows and batch i+1's layer one and row phase read and
    /// write batch i+1's. `advance` makes the next one current.
    /// (`rows(ahead:)`: a ring of `batchesHeld`, rotated in place, so reading it takes no lock or
    /// reference count.)
    private let ring: UnsafeMutablePointer<BatchRows>
    /// How many batches are held: the current one and two staged ahead.
    public static let batchesHeld = 3
    /// The rows of the batch `ahead` (0..<`batchesHeld`) of the current one.
    public func rows(ahead: Int) -> BatchRows {
        precondition(ahead >= 0 && ahead < Self.batchesHeld)
        return ring[ahead]
    }
    /// The current batch's rows.
    public var current: BatchRows { ring[0] }
    public var labels: UnsafeMutablePointer<Int32> { ring[0].labels }
    public var loss: UnsafeMutablePointer<Float> { ring[0].loss }
    /// The dataset index of each row (the loader's bookkeeping).
    public var sampleIndices: UnsafeMutablePointer<Int> { ring[0].sampleIndices }
    /// For a sparse input, per row, where the row's image's entries start in each block of
    /// `SparseRows.blockWidth` columns (`SparseRows.blockOffsets`, `offsetsPerRow` values).
    public var entryOffsets: UnsafeMutablePointer<Int> { ring[0].entryOffsets }
    public let offsetsPerRow: Int
    /// For a sparse input: the chains of x·W1 over each input k-block 0, 1, ..., one B x H_1 matrix
    /// per block (GEMM.kBlockCount(I) x B x H_1 floats); the row phase adds them in block order.
    /// The first hidden layer's output is not written by layer one, so an engine may compute the
    /// next batch's blocks while the parameter phase still reads this batch's rows.
    public let blockSums: FloatBuffer
    public let gradients: FloatBuffer
    /// W_l packed for the forward products, per layer (layer 0's is empty for a sparse input).
    let packedWeights: BufferTable
    /// W_lᵀ packed for the backward products, per layer (layer 0's is always empty).
    let packedTransposes: BufferTable

    public init(layout: ParameterLayout, batchSize: Int, sparseInput: Bool = false) {
        let spec = layout.spec, layers = layout.layers
        self.layout = layout
        self.batchSize = batchSize
        x = FloatBuffer(count: sparseInput ? 0 : batchSize * spec.input)
        blockSums = FloatBuffer(count: sparseInput ? GEMM.kBlockCount(spec.input) * batchSize * layers[0].outputs : 0)
        offsetsPerRow = sparseInput ? SparseRows.blocksPerRow(columns: spec.input) + 1 : 0
        ring = .allocate(capacity: Self.batchesHeld)
        for k in 0..<Self.batchesHeld {
            (ring + k).initialize(to: BatchRows(layout: layout, batchSize: batchSize, offsetsPerRow: offsetsPerRow, sparseInput: sparseInput))
        }
        gradients = FloatBuffer(count: layout.count)
        packedWeights = BufferTable(counts: layers.map { $0.index == 0 && sparseInput ? 0 : $0.packedCount })
        packedTransposes = BufferTable(counts: layers.map { $0.index == 0 ? 0 : $0.packedTransposeCount })
    }

    /// Makes the next batch current, and the one after it next (call while no thread reads any).
    public func advance() {
        let current = ring[0]
        for k in 1..<Self.batchesHeld { ring[k - 1] = ring[k] }
        ring[Self.batchesHeld - 1] = current
    }

    deinit {
        for k in 0..<Self.batchesHeld { ring[k].deallocate() }
        ring.deallocate()
        packedWeights.deallocate()
        packedTransposes.deallocate()
    }

    /// W_l packed (k = inputs).
    public func packedW(_ l: Int) -> UnsafeMutablePointer<Float> { packedWeights[l] }
    /// W_lᵀ packed (k = outputs), l >= 1.
    public func packedWT(_ l: Int) -> UnsafeMutablePointer<Float> { packedTransposes[l] }

    /// Fills row `r` of the batch `ahead` of the current one: its sample index and label, and for
    /// a sparse input its image's block offsets in `x`.
    public func setRow(_ r: Int, image: Int, label: Int32, sparse x: SparseRows? = nil, ahead: Int = 0) {
        let rows = self.rows(ahead: ahead)
        rows.sampleIndices[r] = image
        rows.labels[r] = label
        if let x {
            precondition(offsetsPerRow == x.blocksPerRow + 1, "BatchBuffers was made without sparseInput")
            x.blockOffsets(image, into: rows.entryOffsets + r * offsetsPerRow)
        }
    }

    /// The batch-mean loss: the per-row losses summed in row order 0..<B, divided by B.
    public var meanLoss: Float {
        var sum: Float = 0
        for i in 0..<batchSize { sum += loss[i] }
        return sum / Float(batchSize)
    }
}

/// One batch's rows (`BatchBuffers.rows(ahead:)`): labels, dataset indices and (sparse input)
/// block offsets, and what the row phase computes from them for the parameter phase (shapes at
/// `BatchBuffers`). Raw pointers, so that reading the ring counts no references.
public struct BatchRows {
    public let labels: UnsafeMutablePointer<Int32>
    public let sampleIndices: UnsafeMutablePointer<Int>
    public let entryOffsets: UnsafeMutablePointer<Int>
    public let loss: UnsafeMutablePointer<Float>
    /// z_l for l < L − 1, then d_l for l < L, then packed d_l for l < L.
    let tensors: BufferTable
    let layers: Int

    init(layout: ParameterLayout, batchSize: Int, offsetsPerRow: Int, sparseInput: Bool) {
        labels = .allocate(capacity: batchSize)
        labels.initialize(repeating: 0, count: batchSize)
        sampleIndices = .allocate(capacity: batchSize)
        sampleIndices.initialize(repeating: 0, count: batchSize)
        entryOffsets = .allocate(capacity: max(batchSize * offsetsPerRow, 1))
        entryOffsets.initialize(repeating: 0, count: max(batchSize * offsetsPerRow, 1))
        loss = FloatBuffer.allocate(count: batchSize)
        let layers = layout.layers
        self.layers = layers.count
        tensors = BufferTable(counts: layers.dropLast().map { batchSize * $0.outputs } + layers.map { batchSize * $0.outputs }
            + layers.map { $0.index == 0 && sparseInput ? 0 : GEMM.packedCount(k: batchSize, n: $0.outputs) })
    }

    /// Hidden layer l's output z_l (B, H_l), l < L − 1.
    @inline(__always) public func z(_ l: Int) -> UnsafeMutablePointer<Float> { tensors[l] }
    /// Layer l's delta d_l = ∂loss/∂a_l (B, H_l); d of the last layer is dy.
    @inline(__always) public func d(_ l: Int) -> UnsafeMutablePointer<Float> { tensors[layers - 1 + l] }
    /// d_l packed as a GEMM B-operand (k = B), for dW_l (empty for layer 0 with a sparse input).
    @inline(__always) public func packedD(_ l: Int) -> UnsafeMutablePointer<Float> { tensors[2 * layers - 1 + l] }

    func deallocate() {
        labels.deallocate()
        sampleIndices.deallocate()
        entryOffsets.deallocate()
        FloatBuffer.deallocate(loss)
        tensors.deallocate()
    }
}
