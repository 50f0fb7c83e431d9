import Kernels

/// The network as the lecture's layers, composed over a tile of batch rows:
///
///     forward:   a_l = z_(l−1)·W_l (Affine), z_l = f(a_l + b_l) (ActivationLayer) for each hidden
///                layer l; logits = z_(L−1)·W_L, then SoftmaxWithLoss adds b_L
///     backward:  d_L = dy (SoftmaxWithLoss); d_(l−1) = (d_l·W_lᵀ) ⊙ f'(a_(l−1)) down to layer 1
///
/// (layers counted from 1 here, 0-based in code). Layer 1's product reads the data, which a dense
/// or sparse engine computes in its own way, so both passes start after it: `forward` takes
/// a_1 = x·W_1 in `z[0]`. The training engine and the evaluator call the same `forward`.
///
/// The layers are kept in an unsafe buffer, so reading them on a hot path counts no references
/// (threads that retain one shared object fight over its cache line).
public final class LayerStack: @unchecked Sendable {
    /// Where each layer's W and b lie in the flat buffer.
    public let layout: ParameterLayout
    /// The kernel variant every layer calls.
    public let kernels: KernelFunctions
    /// The hidden layers' activation (one for all of them).
    public let activation: ActivationLayer
    private let table: UnsafeMutableBufferPointer<Affine>

    /// The layers of `layout`'s network, with `kernels`.
    public init(layout: ParameterLayout, kernels: KernelFunctions) {
        self.layout = layout
        self.kernels = kernels
        activation = ActivationLayer(layout.spec.activation, kernels: kernels)
        table = .allocate(capacity: layout.layers.count)
        _ = table.initialize(from: layout.layers)
    }

    deinit { table.deallocate() }

    /// Affine layers (hidden layers + 1).
    @inline(__always) public var count: Int { table.count }
    /// Layer `l`, 0-based.
    @inline(__always) public subscript(l: Int) -> Affine { table[l] }

    /// The forward pass on `n` rows from layer 1's product: `z[0]` holds a_1 = x·W_1 on entry;
    /// on return `z[l]` holds hidden layer l's output and `logits` the output layer's product
    /// without its bias. `packedW[l]`: W_l packed (`Affine.pack`) for l >= 1; `packA` the GEMM's
    /// per-thread scratch.
    public func forward(_ p: UnsafePointer<Float>, rows n: Int, z: UnsafePointer<UnsafeMutablePointer<Float>>,
                        logits: UnsafeMutablePointer<Float>, packedW: UnsafePointer<UnsafeMutablePointer<Float>>,
                        packA: UnsafeMutablePointer<Float>) {
        for l in 0..<count - 1 {
            let layer = table[l]
            let zl = MutableMatrixView(z[l], rows: n, columns: layer.outputs)
            activation.forward(zl, bias: p + layer.bias.lowerBound)
            let next = table[l + 1]
            let out = MutableMatrixView(next.isOutput ? logits : z[l + 1], rows: n, columns: next.outputs)
            next.forward(kernels, zl.readOnly, packedW: packedW[l + 1], out, packA: packA)
        }
    }

    /// The backward pass on `n` rows from dy = `d[count − 1]` down to d_1 = `d[0]`, through the
    /// hidden outputs `z` of `forward`. `packedWT[l]`: W_lᵀ packed (`Affine.packTransposed`), l >= 1.
    public func backward(rows n: Int, z: UnsafePointer<UnsafeMutablePointer<Float>>, d: UnsafePointer<UnsafeMutablePointer<Float>>,
                         packedWT: UnsafePointer<UnsafeMutablePointer<Float>>, packA: UnsafeMutablePointer<Float>) {
        for l in stride(from: count - 1, to: 0, by: -1) {
            let layer = table[l]
            let below = MutableMatrixView(d[l - 1], rows: n, columns: layer.inputs)
            layer.backwardInput(kernels, MatrixView(rowMajor: d[l], rows: n, columns: layer.outputs), packedWT: packedWT[l], below,
                                packA: packA)
            activation.backward(below, z: MatrixView(rowMajor: z[l - 1], rows: n, columns: layer.inputs))
        }
    }
}
