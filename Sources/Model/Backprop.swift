import CSupport
import Kernels

/// Where layer 1 reads a batch's inputs.
public enum BatchInput: @unchecked Sendable {
    /// `BatchBuffers.x` holds the normalized rows (the loader assembles them); the products with
    /// W1 are dense GEMMs.
    case dense
    /// Row r of the batch is row `BatchBuffers.sampleIndices[r]` of these sparse rows (found through
    /// `BatchBuffers.entryOffsets`); the products
    /// with W1 skip the zero pixels (`SparseKernels`) and give the dense path's bits.
    case sparse(SparseRows)

    public var isSparse: Bool {
        if case .sparse = self { return true }
        return false
    }
}

/// Per-batch buffers shared by all workers of a step. Rows are written by the worker that runs
/// their item in the row phase; the parameter phase reads all rows after they are all written.
///
/// Shapes (B = batch size, I = input, H = hidden, O = output):
/// x (B, I), and per held batch (`BatchRows`): labels (B), z1 (B, H), dy (B, O),
/// da1 (B, H), loss (B), packedDa1 and packedDy: da1 and dy packed as GEMM B-operands (k = B);
/// packedW1: W1 packed as a GEMM B-operand (k = I), refreshed by whoever updates W1's rows,
/// (x, packedW1 and packedDa1 are empty for a sparse input, which reads none of them),
/// packedW2 and packedW2T: W2 and W2ᵀ packed, refreshed once per iteration by `prepareRowPhase`.
/// `z1`, `dy`, ... name the current batch's (`rows(ahead: 0)`).
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
    public var labels: UnsafeMutablePointer<Int32> { ring[0].labels }
    public var z1: UnsafeMutablePointer<Float> { ring[0].z1 }
    public var dy: UnsafeMutablePointer<Float> { ring[0].dy }
    public var da1: UnsafeMutablePointer<Float> { ring[0].da1 }
    public var loss: UnsafeMutablePointer<Float> { ring[0].loss }
    public var packedDa1: UnsafeMutablePointer<Float> { ring[0].packedDa1 }
    public var packedDy: UnsafeMutablePointer<Float> { ring[0].packedDy }
    /// The dataset index of each row (the loader's bookkeeping).
    public var sampleIndices: UnsafeMutablePointer<Int> { ring[0].sampleIndices }
    /// For a sparse input, per row, where the row's image's entries start in each block of
    /// `SparseRows.blockWidth` columns (`SparseRows.blockOffsets`, `offsetsPerRow` values).
    public var entryOffsets: UnsafeMutablePointer<Int> { ring[0].entryOffsets }
    public let offsetsPerRow: Int
    /// For a sparse input: the chains of x·W1 over each input k-block 0, 1, ..., one B x H matrix per
    /// block (GEMM.kBlockCount(I) x B x H floats); the row phase adds them into z1 in block order.
    /// z1 is not written by layer one, so an engine may compute the next batch's blocks while the
    /// parameter phase still reads this batch's z1.
    public let blockSums: FloatBuffer
    public let gradients: FloatBuffer
    public let packedW1: FloatBuffer
    public let packedW2: FloatBuffer
    public let packedW2T: FloatBuffer

    public init(layout: ParameterLayout, batchSize: Int, sparseInput: Bool = false) {
        let s = layout.shape
        self.layout = layout
        self.batchSize = batchSize
        x = FloatBuffer(count: sparseInput ? 0 : batchSize * s.input)
        blockSums = FloatBuffer(count: sparseInput ? GEMM.kBlockCount(s.input) * batchSize * s.hidden : 0)
        offsetsPerRow = sparseInput ? SparseRows.blocksPerRow(columns: s.input) + 1 : 0
        ring = .allocate(capacity: Self.batchesHeld)
        for k in 0..<Self.batchesHeld {
            (ring + k).initialize(to: BatchRows(shape: s, batchSize: batchSize, offsetsPerRow: offsetsPerRow, sparseInput: sparseInput))
        }
        gradients = FloatBuffer(count: layout.count)
        packedW1 = FloatBuffer(count: sparseInput ? 0 : GEMM.packedCount(k: s.input, n: s.hidden))
        packedW2 = FloatBuffer(count: GEMM.packedCount(k: s.hidden, n: s.output))
        packedW2T = FloatBuffer(count: GEMM.packedCount(k: s.output, n: s.hidden))
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
    }

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
/// `BatchBuffers`; packedDa1 is empty for a sparse input). Raw pointers, so that reading the ring
/// counts no references.
public struct BatchRows {
    public let labels: UnsafeMutablePointer<Int32>
    public let sampleIndices: UnsafeMutablePointer<Int>
    public let entryOffsets: UnsafeMutablePointer<Int>
    public let z1, dy, da1, loss, packedDa1, packedDy: UnsafeMutablePointer<Float>

    init(shape s: NetworkShape, batchSize: Int, offsetsPerRow: Int, sparseInput: Bool) {
        labels = .allocate(capacity: batchSize)
        labels.initialize(repeating: 0, count: batchSize)
        sampleIndices = .allocate(capacity: batchSize)
        sampleIndices.initialize(repeating: 0, count: batchSize)
        entryOffsets = .allocate(capacity: max(batchSize * offsetsPerRow, 1))
        entryOffsets.initialize(repeating: 0, count: max(batchSize * offsetsPerRow, 1))
        z1 = FloatBuffer.allocate(count: batchSize * s.hidden)
        dy = FloatBuffer.allocate(count: batchSize * s.output)
        da1 = FloatBuffer.allocate(count: batchSize * s.hidden)
        loss = FloatBuffer.allocate(count: batchSize)
        packedDa1 = FloatBuffer.allocate(count: sparseInput ? 0 : GEMM.packedCount(k: batchSize, n: s.hidden))
        packedDy = FloatBuffer.allocate(count: GEMM.packedCount(k: batchSize, n: s.output))
    }

    func deallocate() {
        labels.deallocate()
        sampleIndices.deallocate()
        entryOffsets.deallocate()
        for buffer in [z1, dy, da1, loss, packedDa1, packedDy] { FloatBuffer.deallocate(buffer) }
    }
}

/// Scratch private to one worker thread (allocated once, on the worker's NUMA node by first touch).
public final class WorkerScratch: @unchecked Sendable {
    /// The GEMM's edge-tile packing buffer.
    public let packA: FloatBuffer
    /// The sparse path's dW1 accumulator: `SparseRows.blockWidth` rows of `sparseStride` floats,
    /// twice when the batch spans several GEMM k-blocks (one more sum per block, added in order).
    public let sparseAccumulator: FloatBuffer
    public let sparseStride: Int
    /// One tile of `GEMM.mr` rows of the row phase: z1 and da1 (`mr` x H), a2 and dy (`mr` x O),
    /// computed here and then copied to the batch's buffers (`Backprop.rowPhase` says why).
    let rowTile: FloatBuffer

    /// `batchSize` sizes the sparse accumulator (one sum per GEMM k-block of the batch).
    public init(layout: ParameterLayout, batchSize: Int = 1) {
        let s = layout.shape
        packA = FloatBuffer(count: GEMM.packAScratchCount)
        sparseStride = (s.hidden + 7) / 8 * 8
        let copies = GEMM.kBlockCount(batchSize) > 1 ? 2 : 1
        sparseAccumulator = FloatBuffer(count: SparseRows.blockWidth * sparseStride * copies)
        rowTile = FloatBuffer(count: GEMM.mr * 2 * (s.hidden + s.output))
    }
}

/// The part of the parameter vector a worker reduces and updates in the parameter phase.
public struct ParameterSlice: Equatable, Sendable {
    /// Rows of W1 (input pixels) whose gradient this worker sums over the batch.
    public var w1Rows: Range<Int>
    /// Rows of W2 (hidden units).
    public var w2Rows: Range<Int>
    /// Whether this worker also sums db1 and db2.
    public var biases: Bool

    public init(w1Rows: Range<Int>, w2Rows: Range<Int>, biases: Bool) {
        self.w1Rows = w1Rows
        self.w2Rows = w2Rows
        self.biases = biases
    }

    /// Everything: the single-threaded case.
    public static func all(_ shape: NetworkShape) -> ParameterSlice {
        ParameterSlice(w1Rows: 0..<shape.input, w2Rows: 0..<shape.hidden, biases: true)
    }

    /// The parameter phase's work items: W1 in blocks of `rows` rows, then all of W2, then the
    /// biases. 56 rows of W1 (`SparseRows.blockWidth`, so a sparse item finds its pixels through the
    /// block table) are about 1 MFLOP dense for the default run: large enough that taking an item
    /// costs nothing, small enough (16 items) to balance 2 to 16 workers. W2 is one item (2% of an
    /// iteration's FLOPs), so the worker that updates it can also pack it for the next row phase
    /// (`prepareRowPhase`) without waiting for other items.
    public static func blocks(_ shape: NetworkShape, rows: Int = SparseRows.blockWidth) -> [ParameterSlice] {
        precondition(rows > 0)
        let w1 = stride(from: 0, to: shape.input, by: rows).map {
            ParameterSlice(w1Rows: $0..<min($0 + rows, shape.input), w2Rows: 0..<0, biases: false)
        }
        let w2 = [ParameterSlice(w1Rows: 0..<0, w2Rows: 0..<shape.hidden, biases: false)]
        return w1 + w2 + [ParameterSlice(w1Rows: 0..<0, w2Rows: 0..<0, biases: true)]
    }
}

/// Backprop for `TwoLayerNet`, split into the two kinds of work item the engine runs on its workers:
///
/// 1. `rowPhase` (any rows of the batch): forward to the loss, and backward to
///    da1 = σ'(a1) ⊙ (dy · W2ᵀ), the per-row quantities.
/// 2. `parameterPhase` (any slice of the parameters): the sums over the batch,
///    dW1 = xᵀ·da1, dW2 = z1ᵀ·dy, db1 = Σ_rows da1, db2 = Σ_rows dy — this is the gradient reduction —
///    followed by `update` (SGD) of the same slice.
///
/// Every gradient element is a sum over all B rows in row order 0..<B inside one GEMM, whichever
/// worker computes it, so the result has the same bits for every worker count (docs/reproducibility.md).
public struct Backprop {
    public let kernels: KernelFunctions
    public let layout: ParameterLayout

    public init(kernels: KernelFunctions, layout: ParameterLayout) {
        self.kernels = kernels
        self.layout = layout
    }

    /// Packs all of W1 (after initialisation or loading; updates repack their own rows).
    public func packW1(_ net: TwoLayerNet, into batch: BatchBuffers) {
        let s = layout.shape
        let w1 = MatrixView(rowMajor: net.parameters.pointer + layout.w1.lowerBound, rows: s.input, columns: s.hidden)
        GEMM.packB(w1, into: batch.packedW1.pointer, kRange: 0..<s.input)
    }

    /// Packs W2 and W2ᵀ for the row phases of the next iteration (once, after the update).
    public func prepareRowPhase(_ net: TwoLayerNet, _ batch: BatchBuffers) {
        let s = layout.shape
        let w2 = MatrixView(rowMajor: net.parameters.pointer + layout.w2.lowerBound, rows: s.hidden, columns: s.output)
        GEMM.packB(w2, into: batch.packedW2.pointer, kRange: 0..<s.hidden)
        GEMM.packB(w2.transposed, into: batch.packedW2T.pointer, kRange: 0..<s.output)
    }

    /// Phase 1 on rows `rows` of the batch; x (or, for a sparse input, the sample indices) and
    /// labels of those rows are already assembled, and `packW1` (dense input only) /
    /// `prepareRowPhase` have run since the last update.
    ///
    /// a1 = x·W1 + b1; z1 = σ(a1); a2 = z1·W2 + b2; y = softmax(a2); loss = −log(y_t + 1e-7);
    /// dy = (y − t)/B; da1 = (dy·W2ᵀ) ⊙ (1 − z1) ⊙ z1. Also packs these rows of dy (and, for a
    /// dense input, of da1) for phase 2.
    ///
    /// Each tile of `GEMM.mr` rows is computed in `scratch.rowTile` and then copied to the batch's
    /// z1, dy and da1 (a2 is not kept). Why: those rows' cache lines were last read by another
    /// core (da1 by every W1 item, z1 and dy by the W2 and bias items), which must give up its
    /// copy before this core can write them. Written in place, each of the tile's six steps
    /// waited for its own lines; three copies at the end let the requests overlap. Same
    /// arithmetic, same bits. Measured on 2026-11-30 (AMD EPYC, 2 workers, 18 alternating rounds
    /// of `ptrain --iterations 5000`): 0.97x the time while a cache line took about 400 ns to go
    /// from one vCPU to the other and back (docs/benchmarks.md, "Two machine states").
    ///
    /// For a sparse input, `layerOneDone` says that `forwardBlock` has already run for every
    /// k-block on these rows (the engine runs it in the parameter phase before). `ahead`: the
    /// batch whose rows these are, counted from the current one (`BatchBuffers.rows(ahead:)`; the
    /// sparse engine runs batch i+1's row phase during batch i's parameter phase); a dense input
    /// is always the current batch (`x` holds one batch).
    public func rowPhase(_ net: TwoLayerNet, _ batch: BatchBuffers, _ scratch: WorkerScratch, rows: Range<Int>,
                         input: BatchInput = .dense, layerOneDone: Bool = false, ahead: Int = 0) {
        precondition(ahead == 0 || input.isSparse, "a dense batch's rows are assembled in x, which holds one batch")
        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: GEMM.mr) {
            rowTile(net, batch, scratch, rows: start..<min(start + GEMM.mr, rows.upperBound), input: input,
                    layerOneDone: layerOneDone, ahead: ahead)
        }
    }

    /// `rowPhase` on at most `GEMM.mr` rows.
    func rowTile(_ net: TwoLayerNet, _ batch: BatchBuffers, _ scratch: WorkerScratch, rows: Range<Int>,
                 input: BatchInput, layerOneDone: Bool, ahead: Int) {
        let s = layout.shape
        let p = UnsafePointer(net.parameters.pointer)
        let B = batch.batchSize
        let target = batch.rows(ahead: ahead)
        let n = rows.count
        let tile = scratch.rowTile.pointer
        let z1 = MutableMatrixView(tile, rows: n, columns: s.hidden)
        let da1 = MutableMatrixView(tile + GEMM.mr * s.hidden, rows: n, columns: s.hidden)
        let a2 = MutableMatrixView(tile + 2 * GEMM.mr * s.hidden, rows: n, columns: s.output)
        let dy = MutableMatrixView(tile + 2 * GEMM.mr * s.hidden + GEMM.mr * s.output, rows: n, columns: s.output)
        let k = kernels
        switch input {
        case .dense:
            let x = MatrixView(rowMajor: batch.x.pointer, rows: B, columns: s.input).rows(rows)
            k.multiply(x, batch.packedW1.pointer, z1, false, scratch.packA.pointer)
        case .sparse(let x):
            if !layerOneDone {
                for block in 0..<GEMM.kBlockCount(s.input) { forwardBlock(net, batch, x, block: block, rows: rows, ahead: ahead) }
            }
            // z1 = block 0 + block 1 + ..., in block order, as the dense GEMM adds its k-blocks.
            for (i, r) in rows.enumerated() {
                let z = tile + i * s.hidden
                z.update(from: batch.blockSums.pointer + r * s.hidden, count: s.hidden)
                for block in 1..<GEMM.kBlockCount(s.input) {
                    let sums = batch.blockSums.pointer + (block * B + r) * s.hidden
                    for j in 0..<s.hidden { z[j] += sums[j] }
                }
            }
        }
        k.biasSigmoid(z1, p + layout.b1.lowerBound)
        k.multiply(z1.readOnly, batch.packedW2.pointer, a2, false, scratch.packA.pointer)
        k.softmaxCrossEntropy(a2.readOnly, p + layout.b2.lowerBound, target.labels + rows.lowerBound, B,
                              dy, target.loss + rows.lowerBound)
        k.multiply(dy.readOnly, batch.packedW2T.pointer, da1, false, scratch.packA.pointer)
        k.sigmoidBackward(da1, z1.readOnly)
        (target.z1 + rows.lowerBound * s.hidden).update(from: z1.base, count: n * s.hidden)
        (target.da1 + rows.lowerBound * s.hidden).update(from: da1.base, count: n * s.hidden)
        (target.dy + rows.lowerBound * s.output).update(from: dy.base, count: n * s.output)
        if !input.isSparse {  // the sparse dW1 reads da1's rows in place
            GEMM.packB(MatrixView(rowMajor: target.da1, rows: B, columns: s.hidden), into: target.packedDa1, kRange: rows)
        }
        GEMM.packB(MatrixView(rowMajor: target.dy, rows: B, columns: s.output), into: target.packedDy, kRange: rows)
    }

    /// Phase 2, the reduction over the batch for `slice`, into `batch.gradients`.
    public func parameterPhase(_ batch: BatchBuffers, _ scratch: WorkerScratch, slice: ParameterSlice,
                               input: BatchInput = .dense) {
        let s = layout.shape
        let B = batch.batchSize
        let g = batch.gradients.pointer
        if case .sparse(let x) = input, !slice.w1Rows.isEmpty {
            let dW1 = g + layout.w1.lowerBound
            sparseW1Gradient(x, batch, scratch, pixels: slice.w1Rows) { k, row in
                (dW1 + k * s.hidden).update(from: row, count: s.hidden)
            }
        } else if !slice.w1Rows.isEmpty {
            // dW1 rows = xᵀ rows · da1: x (B, I) viewed transposed is (I, B).
            let xT = MatrixView(rowMajor: batch.x.pointer, rows: B, columns: s.input).transposed.rows(slice.w1Rows)
            let dW1 = MutableMatrixView(g + layout.w1.lowerBound, rows: s.input, columns: s.hidden).rows(slice.w1Rows)
            kernels.multiply(xT, batch.packedDa1, dW1, false, scratch.packA.pointer)
        }
        if !slice.w2Rows.isEmpty {
            let z1T = MatrixView(rowMajor: batch.z1, rows: B, columns: s.hidden).transposed.rows(slice.w2Rows)
            let dW2 = MutableMatrixView(g + layout.w2.lowerBound, rows: s.hidden, columns: s.output).rows(slice.w2Rows)
            kernels.multiply(z1T, batch.packedDy, dW2, false, scratch.packA.pointer)
        }
        if slice.biases {
            columnSums(batch.da1, rows: B, columns: s.hidden, into: g + layout.b1.lowerBound)
            columnSums(batch.dy, rows: B, columns: s.output, into: g + layout.b2.lowerBound)
        }
    }

    /// Sparse input: the multiply-add chain of x·W1 over input k-block `block` (`GEMM.kBlock`) for
    /// batch rows `rows`, into that block's matrix of `batch.blockSums`. It reads only the rows of W1
    /// in that k-block, so an engine that gives each k-block a home worker keeps those rows of W1 on
    /// one core: that worker also sums and updates them in the parameter phase, and then runs this
    /// for the next batch (`ahead` 1: the batch staged by `ShardedLoader.stage`).
    public func forwardBlock(_ net: TwoLayerNet, _ batch: BatchBuffers, _ x: SparseRows, block: Int, rows: Range<Int>,
                             ahead: Int = 0) {
        let s = layout.shape
        let w1 = UnsafePointer(net.parameters.pointer) + layout.w1.lowerBound
        let columns = GEMM.kBlock(block, of: s.input)
        precondition(batch.blockSums.count > 0, "BatchBuffers was made without sparseInput")
        let offsets = batch.rows(ahead: ahead).entryOffsets
        func output(_ r: Int) -> UnsafeMutablePointer<Float> { batch.blockSums.pointer + (block * batch.batchSize + r) * s.hidden }
        // While a row's chain runs (about 0.5 µs for MNIST), the next row's entries and output line
        // are fetched: the entries may sit in the cache of the core that staged the batch, and the
        // output row in the cache of the core whose row item read it last iteration, which must
        // give it up before this core can write it (2 workers: 7-9% faster in alternating runs).
        if let r = rows.first { prefetchForWrite(output(r), count: s.hidden) }
        for r in rows {
            let out = output(r)
            let entries = x.entries(offsets: offsets + r * batch.offsetsPerRow, columns: columns)
            if r + 1 < rows.upperBound {
                x.prefetch(x.entries(offsets: offsets + (r + 1) * batch.offsetsPerRow, columns: columns))
                prefetchForWrite(output(r + 1), count: s.hidden)
            }
            kernels.sparseRowTimesMatrix(x, entries, w1, s.hidden, s.hidden, out, false)
        }
    }

    /// The parameter phase and the SGD update of `slice` in one pass, as the engine runs it. For a
    /// sparse input each W1 row is updated straight from the accumulator that summed its gradient
    /// (while it is in L1), so the W1 part of `batch.gradients` is neither written nor read again;
    /// the arithmetic, and so the bits, are those of `parameterPhase` followed by `update`.
    public func parameterStep(_ net: TwoLayerNet, _ batch: BatchBuffers, _ scratch: WorkerScratch, slice: ParameterSlice,
                              learningRate: Float, input: BatchInput) {
        guard case .sparse(let x) = input, !slice.w1Rows.isEmpty else {
            parameterPhase(batch, scratch, slice: slice, input: input)
            update(net, batch, slice: slice, learningRate: learningRate, input: input)
            return
        }
        let s = layout.shape
        let w1 = net.parameters.pointer + layout.w1.lowerBound
        sparseW1Gradient(x, batch, scratch, pixels: slice.w1Rows) { k, row in
            kernels.sgdStep(w1 + k * s.hidden, row, s.hidden, learningRate)
        }
        var rest = slice
        rest.w1Rows = 0..<0
        parameterPhase(batch, scratch, slice: rest, input: input)
        update(net, batch, slice: rest, learningRate: learningRate, input: input)
    }

    /// dW1 rows `pixels` = xᵀ·da1 from sparse rows: each batch row's non-zero pixels in the range
    /// scatter x·da1[row] into an accumulator of at most `SparseRows.blockWidth` rows (L1-sized),
    /// rows in batch order, one chain per GEMM k-block of the batch, blocks added in order — the
    /// dense GEMM's arithmetic without its zero terms. `finish(k, sums)` then receives each
    /// row k's `hidden` sums.
    func sparseW1Gradient(_ x: SparseRows, _ batch: BatchBuffers, _ scratch: WorkerScratch, pixels: Range<Int>,
                          finish: (_ k: Int, _ sums: UnsafePointer<Float>) -> Void) {
        let s = layout.shape
        let B = batch.batchSize
        let stride = scratch.sparseStride
        precondition(scratch.sparseAccumulator.count >= SparseRows.blockWidth * stride * (GEMM.kBlockCount(B) > 1 ? 2 : 1),
                     "WorkerScratch was made without the layout of a sparse run")
        let acc = scratch.sparseAccumulator.pointer, offsets = batch.entryOffsets
        let partial = acc + SparseRows.blockWidth * stride
        var k0 = pixels.lowerBound
        while k0 < pixels.upperBound {
            let k1 = min(k0 + SparseRows.blockWidth, pixels.upperBound)
            let count = (k1 - k0) * stride
            for block in 0..<GEMM.kBlockCount(B) {
                let target = block == 0 ? acc : partial
                target.update(repeating: 0, count: count)
                for r in GEMM.kBlock(block, of: B) {
                    let entries = x.entries(offsets: offsets + r * batch.offsetsPerRow, columns: k0..<k1)
                    kernels.sparseScatterRow(x, entries, k0, batch.da1 + r * s.hidden,
                                             s.hidden, target, stride)
                }
                if block > 0 { for i in 0..<count { acc[i] += partial[i] } }
            }
            for k in k0..<k1 { finish(k, acc + (k - k0) * stride) }
            k0 = k1
        }
    }

    /// SGD on `slice`: θ ← θ − η·g (multiply, then subtract: no fused multiply-add, so every kernel
    /// variant updates identically). The updated W1 rows are written to the packed copy in the same
    /// pass, so the next row phase needs no repacking and W1 is read once per iteration, not twice.
    /// A sparse input reads W1 itself, not a packed copy, so only the parameters are written.
    public func update(_ net: TwoLayerNet, _ batch: BatchBuffers, slice: ParameterSlice, learningRate: Float,
                       input: BatchInput = .dense) {
        let s = layout.shape
        let p = net.parameters.pointer, g = UnsafePointer(batch.gradients.pointer)
        if input.isSparse {
            let w1 = layout.w1.lowerBound + slice.w1Rows.lowerBound * s.hidden
            kernels.sgdStep(p + w1, g + w1, slice.w1Rows.count * s.hidden, learningRate)
        } else {
            kernels.sgdStepPackedRows(p + layout.w1.lowerBound, g + layout.w1.lowerBound, s.input, s.hidden, slice.w1Rows,
                                      learningRate, batch.packedW1.pointer)
        }
        let w2 = layout.w2.lowerBound + slice.w2Rows.lowerBound * s.output
        kernels.sgdStep(p + w2, g + w2, slice.w2Rows.count * s.output, learningRate)
        if slice.biases {
            kernels.sgdStep(p + layout.b1.lowerBound, g + layout.b1.lowerBound, layout.b1.count, learningRate)
            kernels.sgdStep(p + layout.b2.lowerBound, g + layout.b2.lowerBound, layout.b2.count, learningRate)
        }
    }

    /// The whole gradient on one thread: both phases over everything (tests and tools).
    public func gradient(_ net: TwoLayerNet, _ batch: BatchBuffers, _ scratch: WorkerScratch, input: BatchInput = .dense) {
        if !input.isSparse { packW1(net, into: batch) }
        prepareRowPhase(net, batch)
        rowPhase(net, batch, scratch, rows: 0..<batch.batchSize, input: input)
        parameterPhase(batch, scratch, slice: .all(layout.shape), input: input)
    }
}

/// out[j] = Σ_i m[i, j], summed in row order i = 0, 1, ... (vectorizes across j; each column's
/// order is fixed, so the bits are too).
func columnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
    out.update(repeating: 0, count: columns)
    for i in 0..<rows {
        let row = m + i * columns
        for j in 0..<columns { out[j] += row[j] }
    }
}

/// Write prefetch hints (ask for ownership ahead of the stores) for the cache lines of `count`
/// floats from `start`.
@inline(__always)
func prefetchForWrite(_ start: UnsafeMutablePointer<Float>, count: Int) {
    for j in stride(from: 0, to: count, by: 16) { csupport_prefetch_write(start + j) }
}

extension SparseRows {
    /// Read prefetch hints for the column indices and values of `entries` (every cache line they
    /// span: 32 indices or 64 values to a line).
    @inline(__always)
    public func prefetch(_ entries: Range<Int>) {
        for e in stride(from: entries.lowerBound, to: entries.upperBound, by: 32) { csupport_prefetch(indices + e) }
        if let last = entries.last { csupport_prefetch(indices + last) }
        for e in stride(from: entries.lowerBound, to: entries.upperBound, by: 64) { csupport_prefetch(values + e) }
        if let last = entries.last { csupport_prefetch(values + last) }
    }
}
