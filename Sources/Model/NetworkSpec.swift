import Kernels

/// What network a run trains: the widths of its layers, the hidden layers' activation and the
/// initialisation. One value that the CLI builds from its flags and that the report, `--json`, the
/// checkpoint's metadata and `verify` all read, so they can never disagree.
///
/// The network is the lecture's stack generalised to any depth: for each hidden layer
/// `Affine -> activation`, then `Affine -> SoftmaxWithLoss`. The lecture's `TwoLayerNet` is
/// `NetworkSpec()`: 784-100-10, sigmoid, 0.01·N(0, 1).
public struct NetworkSpec: Equatable, Hashable, Sendable, Codable {
    /// Input width, each hidden width, class count: [784, 100, 10] for the lecture.
    public var widths: [Int]
    /// The hidden layers' activation.
    public var activation: ActivationKind
    /// How the initial weights are drawn (docs/reproducibility.md).
    public var initialization: Initialization

    /// The most hidden layers: deep enough for any MLP a user trains on images of this size, few
    /// enough that the per-layer tables stay small.
    public static let maximumHiddenLayers = 8
    /// The widest hidden layer: 8192 units (a 8192 x 8192 layer is 256 MB of Float32 weights).
    public static let maximumWidth = 8192

    public init(input: Int = 784, hidden: [Int] = [100], output: Int = 10,
                activation: ActivationKind = .sigmoid, initialization: Initialization = .lecture) {
        widths = [input] + hidden + [output]
        self.activation = activation
        self.initialization = initialization
    }

    /// The input width (784 for MNIST).
    public var input: Int { widths[0] }
    /// The number of classes.
    public var output: Int { widths[widths.count - 1] }
    /// The hidden layers' widths, input side first.
    public var hidden: [Int] { Array(widths[1..<widths.count - 1]) }
    /// Affine layers: hidden layers + 1.
    public var layerCount: Int { widths.count - 1 }

    /// "784-100-10", the widths as the report prints them.
    public var widthsDescription: String { widths.map(String.init).joined(separator: "-") }

    /// "784-100-10 sigmoid, lecture init".
    public var description: String { "\(widthsDescription) \(activation.rawValue), \(initialization.rawValue) init" }

    /// Why this spec cannot be built, as a sentence, or nil. Input and class counts come from the
    /// data; the hidden widths from the user, who gets this sentence (with the flag prefixed).
    public static func problem(hidden: [Int]) -> String? {
        if hidden.isEmpty || hidden.count > maximumHiddenLayers {
            return "needs 1 to \(maximumHiddenLayers) hidden layer widths, got \(hidden.count)"
        }
        if let bad = hidden.first(where: { !(1...maximumWidth).contains($0) }) {
            return "widths must be between 1 and \(maximumWidth), got \(bad)"
        }
        return nil
    }
}

/// How the weights start (biases always start at 0). Every weight is `scale`·N(0, 1), where the
/// normal of flat parameter position p is a pure function of (seed, p) (`Network.init(spec:seed:)`).
public enum Initialization: String, CaseIterable, Codable, Sendable {
    /// 0.01·N(0, 1) for every layer: the lecture's `weight_init_std`. It keeps the sigmoid in its
    /// linear range at the start; for deep or ReLU nets it makes the signal vanish layer by layer.
    case lecture
    /// √(2 / fan_in)·N(0, 1) (He et al., 2015): keeps the variance of ReLU activations constant
    /// from layer to layer.
    case he
    /// √(2 / (fan_in + fan_out))·N(0, 1) (Glorot and Bengio, 2010, the normal form): keeps the
    /// variance of sigmoid and tanh activations and of their gradients roughly constant.
    case glorot

    /// The standard deviation of a weight of a layer with `fanIn` inputs and `fanOut` outputs.
    public func scale(fanIn: Int, fanOut: Int) -> Double {
        switch self {
        case .lecture: return 0.01
        case .he: return (2 / Double(fanIn)).squareRoot()
        case .glorot: return (2 / Double(fanIn + fanOut)).squareRoot()
        }
    }
}

/// Layer l's (0-based) place in the flat parameter buffer: W (inputs x outputs, row-major), then b.
public struct Affine: Equatable, Sendable {
    /// 0 for the first layer (the one that reads the data).
    public let index: Int
    /// The layer's input width.
    public let inputs: Int
    /// The layer's output width.
    public let outputs: Int
    /// W's position in the flat buffer (inputs × outputs, row-major).
    public let weights: Range<Int>
    /// b's position in the flat buffer.
    public let bias: Range<Int>
    /// Whether this is the output layer (followed by SoftmaxWithLoss, not an activation).
    public let isOutput: Bool
}

/// Where each tensor lives in the one flat parameter (and gradient) buffer, in the order
/// W1, b1, W2, b2, ..., WL, bL, all row-major; Wl is (widths[l-1], widths[l]).
/// Because everything is one buffer, the reducer, the update, checkpoints and digests are flat loops.
public struct ParameterLayout: Equatable, Sendable {
    /// The network this layout is for.
    public let spec: NetworkSpec
    /// The affine layers, input side first.
    public let layers: [Affine]

    /// The layout of `spec`: W1, b1, W2, b2, ... back to back.
    public init(_ spec: NetworkSpec) {
        self.spec = spec
        var layers: [Affine] = [], offset = 0
        for l in 0..<spec.layerCount {
            let inputs = spec.widths[l], outputs = spec.widths[l + 1]
            let weights = offset..<offset + inputs * outputs
            let bias = weights.upperBound..<weights.upperBound + outputs
            layers.append(Affine(index: l, inputs: inputs, outputs: outputs, weights: weights, bias: bias,
                                 isOutput: l == spec.layerCount - 1))
            offset = bias.upperBound
        }
        self.layers = layers
    }

    /// Total number of parameters (79,510 for 784-100-10).
    public var count: Int { layers.last!.bias.upperBound }

    /// The tensors by name (W1, b1, W2, ...), in buffer order, with their shapes.
    public var tensors: [(name: String, range: Range<Int>, shape: [Int])] {
        layers.flatMap { l in
            [("W\(l.index + 1)", l.weights, [l.inputs, l.outputs]), ("b\(l.index + 1)", l.bias, [l.outputs])]
        }
    }
}
