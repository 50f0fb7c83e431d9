import Kernels

/// A hidden layer's activation (`NetworkSpec.activation`) as a forward/backward pair over a tile of
/// rows, with the preceding `Affine`'s bias fused into the forward pass.
public struct ActivationLayer: Sendable {
    /// Which activation.
    public let kind: ActivationKind
    let kernels: ActivationKernels

    /// `kind`'s forward and backward kernels of this variant.
    public init(_ kind: ActivationKind, kernels: KernelFunctions) {
        self.kind = kind
        self.kernels = kernels.activation(kind)
    }

    /// In place: z = f(a + b), a the tile's affine product.
    @inline(__always)
    public func forward(_ a: MutableMatrixView, bias: UnsafePointer<Float>) { kernels.biasForward(a, bias) }

    /// In place: d = dz ⊙ f'(a), from z = f(a).
    @inline(__always)
    public func backward(_ dz: MutableMatrixView, z: MatrixView) { kernels.backward(dz, z) }
}

/// The lecture's `SoftmaxWithLoss`, forward and backward fused (`Activations.softmaxCrossEntropy`):
/// y = softmax(a + b), loss = −log(y_t + 1e-7), dy = (y − t)/B.
public enum SoftmaxWithLoss {
    /// Forward and backward on a tile: logits `a` (n, classes) without the bias, labels of the
    /// tile's rows, B the whole batch's size; writes dy (n, classes) and each row's loss.
    @inline(__always)
    public static func forwardBackward(_ k: KernelFunctions, logits a: MatrixView, bias: UnsafePointer<Float>,
                                       labels: UnsafePointer<Int32>, batchSize: Int, dy: MutableMatrixView,
                                       loss: UnsafeMutablePointer<Float>) {
        k.softmaxCrossEntropy(a, bias, labels, batchSize, dy, loss)
    }

    /// Forward only (evaluation): each row's loss.
    @inline(__always)
    public static func loss(_ k: KernelFunctions, logits a: MatrixView, bias: UnsafePointer<Float>,
                            labels: UnsafePointer<Int32>, into loss: UnsafeMutablePointer<Float>) {
        k.softmaxCrossEntropy(a, bias, labels, a.rows, nil, loss)
    }
}
