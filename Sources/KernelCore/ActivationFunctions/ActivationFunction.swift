/// A hidden layer's element-wise activation z = f(a): its SIMD forward and backward and its plain
/// reference twin. Each activation is one type in its own file; `ActivationKind` lists them (the
/// `--activation` values) and builds their kernels into each variant's table.
///
/// The backward pass is written in terms of the output z = f(a), which the engine keeps for the
/// weight gradient anyway, so no layer stores its pre-activation: dz·f'(a) = `backward(dz, z)`.
public protocol ActivationFunction {
    /// z = f(a) for eight lanes.
    static func forward<M: MultiplyAdd>(_: M.Type, _ a: SIMD8<Float>) -> SIMD8<Float>
    /// dz·f'(a), from z = f(a).
    static func backward<M: MultiplyAdd>(_: M.Type, _ dz: SIMD8<Float>, z: SIMD8<Float>) -> SIMD8<Float>
    /// f(a), the plain formula (libm, no approximations): the reference twin.
    static func reference<T: ReferenceReal>(_ a: T) -> T
    /// f'(a) expressed through z = f(a), the reference twin of `backward`.
    static func referenceDerivative<T: ReferenceReal>(output z: T) -> T
}

/// The activations a network may use, by their `--activation` names.
public enum ActivationKind: String, CaseIterable, Codable, Sendable {
    /// σ(a) = 1 / (1 + e^(−a)): the lecture's.
    case sigmoid
    /// max(a, 0).
    case relu
    /// tanh(a).
    case tanh

    /// The type that implements it.
    public var function: any ActivationFunction.Type {
        switch self {
        case .sigmoid: return Sigmoid.self
        case .relu: return ReLU.self
        case .tanh: return Tanh.self
        }
    }

    /// Its kernels specialized for `M` (inlinable, so the variant's module code-generates them
    /// for its own CPU target; see `KernelFunctions`).
    @inlinable
    public func kernels<M: MultiplyAdd>(_: M.Type) -> ActivationKernels {
        switch self {
        case .sigmoid: return ActivationKernels(M.self, Sigmoid.self)
        case .relu: return ActivationKernels(M.self, ReLU.self)
        case .tanh: return ActivationKernels(M.self, Tanh.self)
        }
    }
}

/// One activation's kernels for one variant: the forward pass fused with the preceding bias, and
/// the backward pass, both in place over a tile of rows.
public struct ActivationKernels: @unchecked Sendable {
    /// In place `z[i, j] = f(a[i, j] + bias[j])`.
    public let biasForward: (MutableMatrixView, UnsafePointer<Float>) -> Void
    /// In place `dz[i, j] = dz[i, j]·f'(a[i, j])`, given z = f(a).
    public let backward: (MutableMatrixView, MatrixView) -> Void

    @inlinable
    public init<M: MultiplyAdd, A: ActivationFunction>(_: M.Type, _: A.Type) {
        biasForward = { a, bias in Activations.biasActivation(M.self, A.self, a, bias: bias) }
        backward = { dz, z in Activations.activationBackward(M.self, A.self, dz, z: z) }
    }
}

extension Activations {
    /// In place: `z[i, j] = f(a[i, j] + bias[j])`, eight columns at a time (a row's tail through
    /// the same SIMD code on zero padding, so an element's bits never depend on its column).
    @inlinable
    public static func biasActivation<M: MultiplyAdd, A: ActivationFunction>(_: M.Type, _: A.Type, _ a: MutableMatrixView,
                                                                            bias: UnsafePointer<Float>) {
        for i in 0..<a.rows {
            let row = a.base + i * a.rowStride
            var j = 0
            while j < a.columns {
                let w = min(8, a.columns - j)
                store(A.forward(M.self, load(row + j, w) + load(bias + j, w)), row + j, w)
                j += 8
            }
        }
    }

    /// In place: `dz[i, j] = dz[i, j]·f'(a[i, j])` with f' taken from z = f(a).
    @inlinable
    public static func activationBackward<M: MultiplyAdd, A: ActivationFunction>(_: M.Type, _: A.Type, _ dz: MutableMatrixView,
                                                                                z: MatrixView) {
        precondition(z.columnStride == 1 && z.rows == dz.rows && z.columns == dz.columns)
        for i in 0..<dz.rows {
            let d = dz.base + i * dz.rowStride, zr = z.base + i * z.rowStride
            var j = 0
            while j < dz.columns {
                let w = min(8, dz.columns - j)
                store(A.backward(M.self, load(d + j, w), z: load(zr + j, w)), d + j, w)
                j += 8
            }
        }
    }
}
