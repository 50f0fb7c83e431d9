import Kernels
import Seeding

/// A network's parameters: one contiguous Float32 buffer with the views of `ParameterLayout`.
public final class Network: @unchecked Sendable {
    /// Where each layer's W and b lie in `parameters`.
    public let layout: ParameterLayout
    /// W1, b1, W2, b2, ... back to back; see `ParameterLayout`.
    public let parameters: FloatBuffer

    /// The network's widths, activation and initialisation.
    public var spec: NetworkSpec { layout.spec }

    /// Zero parameters (for loading a checkpoint into).
    public init(spec: NetworkSpec) {
        layout = ParameterLayout(spec)
        parameters = FloatBuffer(count: layout.count)
    }

    /// The spec's initialisation: each Wl = scale(l)·N(0, 1) (`Initialization.scale`), biases 0.
    ///
    /// The normal for flat position p is lane p mod 4 of `Philox4x32.normals` of the block at counter
    /// (p / 4, 0, 0, `RandomStream.initialWeights`) under the key `seed`: a pure function of (seed, p),
    /// computed in Float64, multiplied by the scale in Float64 and rounded once to Float32.
    public convenience init(spec: NetworkSpec, seed: UInt64) {
        self.init(spec: spec)
        let rng = Philox4x32(seed: seed)
        let p = parameters.pointer
        for layer in layout.layers {
            let scale = spec.initialization.scale(fanIn: layer.inputs, fanOut: layer.outputs)
            for i in layer.weights {
                let block = UInt64(i / 4)
                let words = rng.block(SIMD4(UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32), 0,
                                            RandomStream.initialWeights.rawValue))
                p[i] = Float(scale * Philox4x32.normals(words)[i % 4])
            }
        }
    }

    /// A copy of the parameters as an array.
    public var parameterArray: [Float] { Array(parameters.buffer) }
}
