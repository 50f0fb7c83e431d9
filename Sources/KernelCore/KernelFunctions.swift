/// One instantiation of every kernel for a `MultiplyAdd` policy, as a table of function values.
///
/// The initializer is `@inlinable` and generic, so the closures are specialized and code-generated
/// in the module that calls it, with that module's CPU target: `KernelsAVX2` builds the table under
/// `-target-cpu x86-64-v3`, `KernelsAVX512` under x86-64-v4, `Kernels` builds the baseline one.
/// Calling through the table costs one indirect call per kernel invocation, nothing inside the loops.
/// Only the GEMM's tile depends on the vector width (`vector`); the other kernels are SIMD8 code in
/// every variant.
public struct KernelFunctions: @unchecked Sendable {
    /// Lanes per vector of the GEMM's register tile (8: 6x16 tile, 16: 6x32).
    public let gemmLanes: Int
    /// `c (=|+=) a · packedB`; see `GEMM.multiply`.
    public let multiply: (MatrixView, UnsafePointer<Float>, MutableMatrixView, Bool, UnsafeMutablePointer<Float>) -> Void
    /// Sparse row · dense matrix, `out (=|+=) x_row · w`; see `SparseKernels.rowTimesMatrix`.
    /// Arguments: rows, entries, w, w's row stride, columns, out, accumulate.
    public let sparseRowTimesMatrix: (SparseRows, Range<Int>, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>, Bool) -> Void
    /// A sparse row's contribution to xᵀ·d; see `SparseKernels.scatterRow`.
    /// Arguments: rows, entries, first column, d, columns, acc, acc's row stride.
    public let sparseScatterRow: (SparseRows, Range<Int>, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int) -> Void
    /// Every hidden-layer activation's kernels, in `ActivationKind.allCases` order; see `activation(_:)`.
    public let activations: [ActivationKernels]
    /// Fused softmax, cross-entropy and dy; see `Activations.softmaxCrossEntropy`.
    public let softmaxCrossEntropy: (MatrixView, UnsafePointer<Float>, UnsafePointer<Int32>, Int, MutableMatrixView?, UnsafeMutablePointer<Float>) -> Void
    /// SIMD8 exp; see `Activations.exp`.
    public let exp: (SIMD8<Float>) -> SIMD8<Float>
    /// Bytes to Float32 / 255; see `Activations.normalizePixels`.
    public let normalizePixels: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<Float>) -> Void
    /// θ ← θ − η·g; see `Activations.sgdStep`.
    public let sgdStep: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Float) -> Void
    /// SGD with L2 decay; see `UpdateKernels.sgd`. Arguments: p, g, count, rate, decay.
    public let sgdDecayStep: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Float, Float) -> Void
    /// Momentum and Nesterov; see `UpdateKernels.momentum`. Arguments: p, g, velocity, count, rate,
    /// momentum, decay, nesterov.
    public let momentumStep: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Float, Float, Float, Bool) -> Void
    /// Adam and AdamW; see `UpdateKernels.adam`.
    public let adamStep: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int,
                          AdamConstants) -> Void

    /// The kernels with multiply-add `M`, a GEMM tile of `vector`s and the GEMM walking products
    /// as `blocking` says.
    @inlinable
    public init<M: MultiplyAdd, V: SIMD>(_: M.Type, vector: V.Type, blocking: GEMMBlocking) where V.Scalar == Float {
        gemmLanes = V.scalarCount
        multiply = { a, b, c, accumulate, scratch in
            GEMM.multiply(M.self, V.self, a, packedB: b, into: c, accumulate: accumulate, packAScratch: scratch, blocking: blocking)
        }
        sparseRowTimesMatrix = { rows, entries, w, stride, columns, out, accumulate in
            SparseKernels.rowTimesMatrix(M.self, rows, entries: entries, w: w, rowStride: stride, columns: columns,
                                         into: out, accumulate: accumulate)
        }
        sparseScatterRow = { rows, entries, first, d, columns, acc, stride in
            SparseKernels.scatterRow(M.self, rows, entries: entries, firstColumn: first, d: d, columns: columns,
                                     into: acc, accStride: stride)
        }
        activations = ActivationKind.allCases.map { $0.kernels(M.self) }
        softmaxCrossEntropy = { a, bias, labels, batchSize, dy, loss in
            Activations.softmaxCrossEntropy(M.self, logits: a, bias: bias, labels: labels, batchSize: batchSize, dy: dy, loss: loss)
        }
        exp = { x in Activations.exp(M.self, x) }
        normalizePixels = { source, count, destination in Activations.normalizePixels(M.self, source, count: count, into: destination) }
        sgdStep = { p, g, count, rate in Activations.sgdStep(M.self, p, g, count: count, learningRate: rate) }
        sgdDecayStep = { p, g, count, rate, decay in UpdateKernels.sgd(M.self, p, g, count: count, rate: rate, decay: decay) }
        momentumStep = { p, g, v, count, rate, mu, decay, nesterov in
            UpdateKernels.momentum(M.self, p, g, velocity: v, count: count, rate: rate, momentum: mu, decay: decay, nesterov: nesterov)
        }
        adamStep = { p, g, m, v, count, c in
            UpdateKernels.adam(M.self, p, g, m: m, v: v, count: count, rate: c.rate, beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon,
                               correction1: c.correction1, correction2: c.correction2, decay: c.decay, decoupled: c.decoupled)
        }
    }

    /// The kernels of `kind`.
    public func activation(_ kind: ActivationKind) -> ActivationKernels {
        activations[ActivationKind.allCases.firstIndex(of: kind)!]
    }
}
