import Kernels

/// The update seam: how a run of parameters moves, given its gradient summed over the batch.
///
/// The engine calls it once per work item of the parameter phase, on that item's slice only (the
/// rows of one W, or the biases), right after the reduction summed the slice's gradient — and the
/// sparse first layer calls it per W1 row, straight from the accumulator that summed the row. So
/// a rule sees any partition of the parameters and must treat each element on its own: then the
/// result does not depend on how the work was split (docs/reproducibility.md).
///
/// A conforming type holds only plain values (the learning rate, ...), so storing one as `any
/// ParameterUpdate` needs no heap box and calling it counts no references on the hot path.
public protocol ParameterUpdate: Sendable {
    /// Updates `count` parameters from `parameters`, whose gradients start at `gradient`; both
    /// point at flat position `offset` of the parameter buffer (where a rule with state keeps it).
    func apply(_ kernels: KernelFunctions, _ parameters: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
               count: Int, offset: Int)
}

/// The lecture's SGD: θ ← θ − η·g (a multiply, then a subtract: never fused, so every kernel
/// variant updates alike).
public struct SGD: ParameterUpdate, Equatable {
    public var learningRate: Float

    public init(learningRate: Float) { self.learningRate = learningRate }

    @inline(__always)
    public func apply(_ kernels: KernelFunctions, _ parameters: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                      count: Int, offset: Int) {
        kernels.sgdStep(parameters, gradient, count, learningRate)
    }
}
