import CSupport
import Kernels
import Model

/// Backprop for any `Network`, split into the kinds of work item the engine runs on its workers:
///
/// 1. `rowPhase` (any rows of the batch): forward to the loss and backward to every layer's delta
///    d_l (`LayerStack`), the per-row quantities.
/// 2. `parameterPhase` (any `ParameterSlice`): the sums over the batch, dW_l = inputᵀ·d_l (input
///    = x for layer 1, z_(l−1) above it) and db_l = Σ_rows d_l — this is the gradient reduction —
///    followed by the update (`ParameterUpdate`) of the same slice.
///
/// Every gradient element is a sum over all B rows in row order 0..<B inside one GEMM, whichever
/// worker computes it, so the result has the same bits for every worker count (docs/reproducibility.md).
/// Nothing here names a layer: layer 1 is special only because it reads the data (dense rows or
/// sparse pixels), and every other layer is the same `Affine` + activation pair.
public final class Backprop: @unchecked Sendable {
    /// The kernel variant.
    public let kernels: KernelFunctions
    /// The network's layout.
    public let layout: ParameterLayout
    /// The layers above layer one's product.
    public let stack: LayerStack

    /// The passes of `layout`'s network with `kernels`.
    public init(kernels: KernelFunctions, layout: ParameterLayout) {
        self.kernels = kernels
        self.layout = layout
        stack = LayerStack(layout: layout, kernels: kernels)
    }

    /// Packs every W_l and W_lᵀ the row phase reads (after initialisation or loading; the
    /// updates repack their own rows afterwards). A sparse input reads W_1 itself, not a packed copy.
    public func packAll(_ net: Network, _ batch: BatchBuffers, input: BatchInput = .dense) {
        let p = UnsafePointer(net.parameters.pointer)
        for l in 0..<stack.count {
            let layer = stack[l]
            if l > 0 || !input.isSparse { layer.pack(p, into: batch.packedW(l), rows: 0..<layer.inputs) }
            if l > 0 { layer.packTransposed(p, into: batch.packedWT(l), rows: 0..<layer.inputs) }
        }
    }

    /// Phase 1 on rows `rows` of the batch; x (or, for a sparse input, the sample indices) and
    /// labels of those rows are already assembled, and the packed weights are current (`packAll`,
    /// then the updates).
    ///
    /// Forward and backward through `LayerStack`: a_1 = x·W_1 (dense GEMM or the sparse blocks'
    /// sums); z_l = f(a_l + b_l); logits; SoftmaxWithLoss: loss = −log(y_t + 1e-7), dy = (y − t)/B;
    /// then d_(l−1) = (d_l·W_lᵀ) ⊙ f'(a_(l−1)). Also packs these rows of each d_l for phase 2.
    ///
    /// The rows are computed in passes of `scratch.passRows` (one register tile, or for a wide
    /// network up to 48 rows, so each pass reads every W once: `WorkItemSizes.rowsPerPass`) in the
    /// worker's scratch, and then copied to the batch's buffers. Why: those rows' cache lines were last read by another core (every
    /// parameter item reads some of them), which must give up its copy before this core can write
    /// them. Written in place, each step of the tile waited for its own lines; copies at the end
    /// let the requests overlap, which matters most where the host places the vCPUs on cores that
    /// share no cache (`CoreRoundTrip`). Same arithmetic, same bits.
    ///
    /// For a sparse input, `layerOneDone` says that `forwardBlock` has already run for every
    /// k-block on these rows (the engine runs it in the parameter phase before). `ahead`: the
    /// batch whose rows these are, counted from the current one (`BatchBuffers.rows(ahead:)`; the
    /// sparse engine runs batch i+1's row phase during batch i's parameter phase); a dense input
    /// is always the current batch (`x` holds one batch).
    public func rowPhase(_ net: Network, _ batch: BatchBuffers, _ scratch: WorkerScratch, rows: Range<Int>,
                         input: BatchInput = .dense, layerOneDone: Bool = false, ahead: Int = 0) {
        precondition(ahead == 0 || input.isSparse, "a dense batch's rows are assembled in x, which holds one batch")
        for start in stride(from: rows.lowerBound, to: rows.upperBound, by: scratch.passRows) {
            rowTile(net, batch, scratch, rows: start..<min(start + scratch.passRows, rows.upperBound), input: input,
                    layerOneDone: layerOneDone, ahead: ahead)
        }
    }

    /// `rowPhase` on at most `scratch.passRows` rows.
    func rowTile(_ net: Network, _ batch: BatchBuffers, _ scratch: WorkerScratch, rows: Range<Int>,
                 input: BatchInput, layerOneDone: Bool, ahead: Int) {
        let p = UnsafePointer(net.parameters.pointer)
        let B = batch.batchSize
        let target = batch.rows(ahead: ahead)
        let n = rows.count
        let L = stack.count
        let first = stack[0], last = stack[L - 1]
        let a1 = MutableMatrixView(scratch.z[0], rows: n, columns: first.outputs)
        switch input {
        case .dense:
            let x = MatrixView(rowMajor: batch.x.pointer, rows: B, columns: first.inputs).rows(rows)
            first.forward(kernels, x, packedW: batch.packedW(0), a1, packA: scratch.packA.pointer)
        case .sparse(let x):
            if !layerOneDone {
                for block in 0..<GEMM.kBlockCount(first.inputs) { forwardBlock(net, batch, x, block: block, rows: rows, ahead: ahead) }
            }
            // a_1 = block 0 + block 1 + ..., in block order, as the dense GEMM adds its k-blocks.
            let h = first.outputs
            for (i, r) in rows.enumerated() {
                let z = a1.base + i * h
                z.update(from: batch.blockSums.pointer + r * h, count: h)
                for block in 1..<GEMM.kBlockCount(first.inputs) {
                    let sums = batch.blockSums.pointer + (block * B + r) * h
                    for j in 0..<h { z[j] += sums[j] }
                }
            }
        }
        stack.forward(p, rows: n, z: scratch.z, logits: scratch.logits, packedW: batch.packedWeights.pointers,
                      packA: scratch.packA.pointer)
        let dy = MutableMatrixView(scratch.d[L - 1], rows: n, columns: last.outputs)
        SoftmaxWithLoss.forwardBackward(kernels, logits: MatrixView(rowMajor: scratch.logits, rows: n, columns: last.outputs),
                                        bias: p + last.bias.lowerBound, labels: target.labels + rows.lowerBound, batchSize: B,
                                        dy: dy, loss: target.loss + rows.lowerBound)
        stack.backward(rows: n, z: scratch.z, d: scratch.d, packedWT: batch.packedTransposes.pointers, packA: scratch.packA.pointer)
        for l in 0..<L {
            let h = stack[l].outputs
            if l < L - 1 { (target.z(l) + rows.lowerBound * h).update(from: scratch.z[l], count: n * h) }
            (target.d(l) + rows.lowerBound * h).update(from: scratch.d[l], count: n * h)
        }
        for l in 0..<L where l > 0 || !input.isSparse {  // the sparse dW1 reads d_1's rows in place
            GEMM.packB(MatrixView(rowMajor: target.d(l), rows: B, columns: stack[l].outputs), into: target.packedD(l), kRange: rows)
        }
    }

    /// Phase 2, the reduction over the batch for `slice`, into `batch.gradients`.
    public func parameterPhase(_ batch: BatchBuffers, _ scratch: WorkerScratch, slice: ParameterSlice,
                               input: BatchInput = .dense) {
        let B = batch.batchSize
        let g = batch.gradients.pointer
        let current = batch.current
        if !slice.rows.isEmpty {
            let layer = stack[slice.layer]
            if case .sparse(let x) = input, slice.layer == 0 {
                let dW1 = g + layer.weights.lowerBound
                sparseW1Gradient(x, batch, scratch, pixels: slice.rows) { k, row in
                    (dW1 + k * layer.outputs).update(from: row, count: layer.outputs)
                }
            } else {
                let layerInput = slice.layer == 0 ? UnsafePointer(batch.x.pointer) : UnsafePointer(current.z(slice.layer - 1))
                layer.weightGradient(kernels, input: MatrixView(rowMajor: layerInput, rows: B, columns: layer.inputs),
                                     packedD: current.packedD(slice.layer), rows: slice.rows, into: g, packA: scratch.packA.pointer)
            }
        }
        if slice.biases {
            for l in 0..<stack.count { stack[l].biasGradient(current.d(l), batchSize: B, into: g) }
        }
    }

    /// Sparse input: the multiply-add chain of x·W1 over input k-block `block` (`GEMM.kBlock`) for
    /// batch rows `rows`, into that block's matrix of `batch.blockSums`. It reads only the rows of W1
    /// in that k-block, so an engine that gives each k-block a home worker keeps those rows of W1 on
    /// one core: that worker also sums and updates them in the parameter phase, and then runs this
    /// for the next batch (`ahead` 1: the batch staged by `ShardedLoader.stage`).
    public func forwardBlock(_ net: Network, _ batch: BatchBuffers, _ x: SparseRows, block: Int, rows: Range<Int>,
                             ahead: Int = 0) {
        let first = stack[0]
        let h = first.outputs
        let w1 = UnsafePointer(net.parameters.pointer) + first.weights.lowerBound
        let columns = GEMM.kBlock(block, of: first.inputs)
        precondition(batch.blockSums.count > 0, "BatchBuffers was made without sparseInput")
        let offsets = batch.rows(ahead: ahead).entryOffsets
        func output(_ r: Int) -> UnsafeMutablePointer<Float> { batch.blockSums.pointer + (block * batch.batchSize + r) * h }
        // While a row's chain runs, the next row's entries and output line are fetched: the entries
        // may sit in the cache of the core that staged the batch, and the output row in the cache
        // of the core whose row item read it last iteration, which must give it up before this
        // core can write it.
        if let r = rows.first { prefetchForWrite(output(r), count: h) }
        for r in rows {
            let out = output(r)
            let entries = x.entries(offsets: offsets + r * batch.offsetsPerRow, columns: columns)
            if r + 1 < rows.upperBound {
                x.prefetch(x.entries(offsets: offsets + (r + 1) * batch.offsetsPerRow, columns: columns))
                prefetchForWrite(output(r + 1), count: h)
            }
            kernels.sparseRowTimesMatrix(x, entries, w1, h, h, out, false)
        }
    }

    /// The parameter phase and the update of `slice` in one pass, as the engine runs it. For a
    /// sparse input each W1 row is updated straight from the accumulator that summed its gradient
    /// (while it is in L1), so the W1 part of `batch.gradients` is neither written nor read again;
    /// the arithmetic, and so the bits, are those of `parameterPhase` followed by `update`.
    public func parameterStep<Rule: ParameterUpdate>(_ net: Network, _ batch: BatchBuffers, _ scratch: WorkerScratch, slice: ParameterSlice,
                                                     update rule: Rule, step: UpdateStep, state: StateSlots, input: BatchInput) {
        guard case .sparse(let x) = input, slice.layer == 0, !slice.rows.isEmpty else {
            parameterPhase(batch, scratch, slice: slice, input: input)
            update(net, batch, slice: slice, rule: rule, step: step, state: state, input: input)
            return
        }
        let first = stack[0]
        let w1 = net.parameters.pointer + first.weights.lowerBound
        sparseW1Gradient(x, batch, scratch, pixels: slice.rows) { k, row in
            rule.apply(self.kernels, w1 + k * first.outputs, row, count: first.outputs, offset: first.weights.lowerBound + k * first.outputs,
                       step: step, state: state)
        }
        var rest = slice
        rest.rows = 0..<0
        parameterPhase(batch, scratch, slice: rest, input: input)
        update(net, batch, slice: rest, rule: rule, step: step, state: state, input: input)
    }

    /// dW1 rows `pixels` = xᵀ·d_1 from sparse rows: each batch row's non-zero pixels in the range
    /// scatter x·d_1[row] into an accumulator of at most `SparseRows.blockWidth` rows (L1-sized),
    /// rows in batch order, one chain per GEMM k-block of the batch, blocks added in order — the
    /// dense GEMM's arithmetic without its zero terms. `finish(k, sums)` then receives each
    /// row k's H_1 sums.
    func sparseW1Gradient(_ x: SparseRows, _ batch: BatchBuffers, _ scratch: WorkerScratch, pixels: Range<Int>,
                          finish: (_ k: Int, _ sums: UnsafePointer<Float>) -> Void) {
        let h = stack[0].outputs
        let B = batch.batchSize
        let stride = scratch.sparseStride
        precondition(scratch.sparseAccumulator.count >= SparseRows.blockWidth * stride * (GEMM.kBlockCount(B) > 1 ? 2 : 1),
                     "WorkerScratch was made without the layout of a sparse run")
        let acc = scratch.sparseAccumulator.pointer, offsets = batch.entryOffsets
        let d1 = UnsafePointer(batch.current.d(0))
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
                    kernels.sparseScatterRow(x, entries, k0, d1 + r * h, h, target, stride)
                }
                if block > 0 { for i in 0..<count { acc[i] += partial[i] } }
            }
            for k in k0..<k1 { finish(k, acc + (k - k0) * stride) }
            k0 = k1
        }
    }

    /// The update of `slice` from `batch.gradients` (`ParameterUpdate`), then the packed copies of
    /// the updated W rows (W_l for the forward products, W_lᵀ for the backward ones), so the next
    /// row phase needs no other repacking. A sparse input reads W_1 itself, not a packed copy.
    public func update<Rule: ParameterUpdate>(_ net: Network, _ batch: BatchBuffers, slice: ParameterSlice, rule: Rule, step: UpdateStep,
                                              state: StateSlots, input: BatchInput = .dense) {
        let p = net.parameters.pointer, g = UnsafePointer(batch.gradients.pointer)
        if !slice.rows.isEmpty {
            let layer = stack[slice.layer]
            let start = layer.weights.lowerBound + slice.rows.lowerBound * layer.outputs
            rule.apply(kernels, p + start, g + start, count: slice.rows.count * layer.outputs, offset: start, step: step, state: state)
            if slice.layer > 0 || !input.isSparse { layer.pack(p, into: batch.packedW(slice.layer), rows: slice.rows) }
            if slice.layer > 0 { layer.packTransposed(p, into: batch.packedWT(slice.layer), rows: slice.rows) }
        }
        if slice.biases {
            for l in 0..<stack.count {
                let b = stack[l].bias
                rule.apply(kernels, p + b.lowerBound, g + b.lowerBound, count: b.count, offset: b.lowerBound, step: step, state: state)
            }
        }
    }

    /// The whole gradient on one thread: both phases over everything (tests and tools).
    public func gradient(_ net: Network, _ batch: BatchBuffers, _ scratch: WorkerScratch, input: BatchInput = .dense) {
        packAll(net, batch, input: input)
        rowPhase(net, batch, scratch, rows: 0..<batch.batchSize, input: input)
        for slice in ParameterSlice.all(layout.spec) { parameterPhase(batch, scratch, slice: slice, input: input) }
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
