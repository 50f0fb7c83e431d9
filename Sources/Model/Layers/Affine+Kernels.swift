import Kernels

/// The lecture's `Affine` layer as forward/backward kernels over views of the flat buffers.
///
/// out = in·W + b. The bias is added by the layer that follows, fused into its pass over the
/// tile (`ActivationLayer.forward`, `SoftmaxWithLoss.forward`), so the product is written once.
/// W is read from its packed copies (`GEMM.packB`): W for the forward product, Wᵀ for the
/// backward one; the engine refreshes both after each update of W's rows.
///
/// Every product element is one multiply-add chain per GEMM k-block in increasing k, blocks
/// added in order (`GEMM`): its bits do not depend on which rows or columns were computed with it.
extension Affine {
    /// W as a (inputs, outputs) view into `parameters`.
    public func weightMatrix(_ parameters: UnsafePointer<Float>) -> MatrixView {
        MatrixView(rowMajor: parameters + weights.lowerBound, rows: inputs, columns: outputs)
    }

    /// Floats of W packed as a GEMM B-operand (k = inputs).
    public var packedCount: Int { GEMM.packedCount(k: inputs, n: outputs) }
    /// Floats of Wᵀ packed as a GEMM B-operand (k = outputs).
    public var packedTransposeCount: Int { GEMM.packedCount(k: outputs, n: inputs) }

    /// Packs rows `rows` of W into `packed` (W's forward copy).
    public func pack(_ parameters: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        GEMM.packB(weightMatrix(parameters), into: packed, kRange: rows)
    }

    /// Packs rows `rows` of W, which are columns of Wᵀ, into `packed` (Wᵀ's copy, for the backward
    /// product). `rows` starts at a multiple of `GEMM.nr`, so its columns fill whole panels of the
    /// packed Wᵀ and disjoint row ranges can be packed by different threads.
    public func packTransposed(_ parameters: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        precondition(rows.lowerBound % GEMM.nr == 0 && (rows.upperBound % GEMM.nr == 0 || rows.upperBound == inputs),
                     "Wᵀ is packed in whole panels of \(GEMM.nr) columns")
        let columns = weightMatrix(parameters).rows(rows).transposed
        GEMM.packB(columns, into: packed + rows.lowerBound / GEMM.nr * outputs * GEMM.nr, kRange: 0..<outputs)
    }

    /// Forward: `out = input · W` (input: (n, inputs), out: (n, outputs)).
    @inline(__always)
    public func forward(_ k: KernelFunctions, _ input: MatrixView, packedW: UnsafePointer<Float>, _ out: MutableMatrixView,
                        packA: UnsafeMutablePointer<Float>) {
        k.multiply(input, packedW, out, false, packA)
    }

    /// Backward to the input: `dInput = d · Wᵀ` (d: (n, outputs), dInput: (n, inputs)).
    @inline(__always)
    public func backwardInput(_ k: KernelFunctions, _ d: MatrixView, packedWT: UnsafePointer<Float>, _ dInput: MutableMatrixView,
                              packA: UnsafeMutablePointer<Float>) {
        k.multiply(d, packedWT, dInput, false, packA)
    }

    /// Backward to the weights, rows `rows` of dW = inputᵀ · d over the whole batch
    /// (input: (B, inputs), d packed as a B-operand with k = B): each element sums the batch's
    /// rows in row order 0..<B.
    public func weightGradient(_ k: KernelFunctions, input: MatrixView, packedD: UnsafePointer<Float>, rows: Range<Int>,
                               into gradients: UnsafeMutablePointer<Float>, packA: UnsafeMutablePointer<Float>) {
        let dW = MutableMatrixView(gradients + weights.lowerBound, rows: inputs, columns: outputs).rows(rows)
        k.multiply(input.transposed.rows(rows), packedD, dW, false, packA)
    }

    /// Backward to the bias: db[j] = Σ_r d[r, j], in row order r = 0, 1, ... (d: (B, outputs)).
    public func biasGradient(_ d: UnsafePointer<Float>, batchSize: Int, into gradients: UnsafeMutablePointer<Float>) {
        columnSums(d, rows: batchSize, columns: outputs, into: gradients + bias.lowerBound)
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
