import Kernels
import Seeding

/// The lecture's network sizes: input -> hidden (sigmoid) -> output (softmax).
public struct NetworkShape: Equatable, Sendable, Codable {
    public var input: Int
    public var hidden: Int
    public var output: Int

    public init(input: Int = 784, hidden: Int = 100, output: Int = 10) {
        self.input = input
        self.hidden = hidden
        self.output = output
    }
}

/// Where each tensor lives in the one flat parameter (and gradient) buffer, in the order
/// W1 (input x hidden), b1 (hidden), W2 (hidden x output), b2 (output), all row-major.
/// Because everything is one buffer, the reducer, the optimizer, checkpoints and digests are flat loops.
public struct ParameterLayout: Equatable, Sendable {
    public let shape: NetworkShape
    public let w1: Range<Int>
    public let b1: Range<Int>
    public let w2: Range<Int>
    public let b2: Range<Int>

    public init(_ shape: NetworkShape) {
        self.shape = shape
        w1 = 0..<shape.input * shape.hidden
        b1 = w1.upperBound..<w1.upperBound + shape.hidden
        w2 = b1.upperBound..<b1.upperBound + shape.hidden * shape.output
        b2 = w2.upperBound..<w2.upperBound + shape.output
    }

    /// Total number of parameters (79,510 for 784-100-10).
    public var count: Int { b2.upperBound }

    /// The tensors by name, in buffer order, with their shapes.
    public var tensors: [(name: String, range: Range<Int>, shape: [Int])] {
        [("W1", w1, [shape.input, shape.hidden]), ("b1", b1, [shape.hidden]),
         ("W2", w2, [shape.hidden, shape.output]), ("b2", b2, [shape.output])]
    }
}

/// The lecture's `TwoLayerNet` parameters: one contiguous Float32 buffer with per-tensor views.
public final class TwoLayerNet: @unchecked Sendable {
    public let layout: ParameterLayout
    /// W1, b1, W2, b2 back to back; see `ParameterLayout`.
    public let parameters: FloatBuffer

    /// Zero parameters (for loading a checkpoint into).
    public init(shape: NetworkShape) {
        layout = ParameterLayout(shape)
        parameters = FloatBuffer(count: layout.count)
    }

    /// The lecture's initialisation: W1, W2 = `weightScale`·N(0, 1), b1, b2 = 0.
    ///
    /// The normal for flat position p is lane p mod 4 of `Philox4x32.normals` of the block at counter
    /// (p / 4, 0, 0, `RandomStream.initialWeights`) under the key `seed`: a pure function of (seed, p),
    /// computed in Float64 and rounded once. The default scale 0.01 is the lecture's `weight_init_std`:
    /// it keeps the sigmoid in its linear range at the start, so early gradients neither vanish nor explode.
    public convenience init(shape: NetworkShape, seed: UInt64, weightScale: Double = 0.01) {
        self.init(shape: shape)
        let rng = Philox4x32(seed: seed)
        let p = parameters.pointer
        for range in [layout.w1, layout.w2] {
            for i in range {
                let block = UInt64(i / 4)
                let words = rng.block(SIMD4(UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32), 0,
                                            RandomStream.initialWeights.rawValue))
                p[i] = Float(weightScale * Philox4x32.normals(words)[i % 4])
            }
        }
    }

    /// A copy of the parameters as an array.
    public var parameterArray: [Float] { Array(parameters.buffer) }

    public func copyParameters(from other: TwoLayerNet) {
        precondition(other.layout == layout)
        parameters.pointer.update(from: other.parameters.pointer, count: layout.count)
    }
}
