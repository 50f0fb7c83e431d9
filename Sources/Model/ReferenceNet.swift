import Kernels

/// The plain twin of `Network` + the engine's passes: the lecture's layers as scalar loops in `T`
/// (Float64 for the reference path, Float32 to compare like for like), same flat layout, any
/// depth and activation. Slow by design; used by tests and the gradient check.
public struct ReferenceNet<T: ReferenceReal> {
    /// The network's layout, the same as the fast path's.
    public let layout: ParameterLayout
    /// W1, b1, W2, b2, ..., as in `ParameterLayout`.
    public var parameters: [T]

    /// A network of `layout` with these parameters.
    public init(layout: ParameterLayout, parameters: [T]) {
        precondition(parameters.count == layout.count)
        self.layout = layout
        self.parameters = parameters
    }

    /// `net`'s parameters, converted to `T`.
    public init(_ net: Network) {
        self.init(layout: net.layout, parameters: net.parameterArray.map { T($0) })
    }

    func tensor(_ r: Range<Int>) -> [T] { Array(parameters[r]) }

    /// Affine: in (batch, inputs) · W + b.
    func affine(_ input: [T], _ layer: Affine, batch: Int) -> [T] {
        var a = Reference.matmul(input, tensor(layer.weights), m: batch, k: layer.inputs, n: layer.outputs)
        let b = tensor(layer.bias)
        for i in 0..<batch { for j in 0..<layer.outputs { a[i * layer.outputs + j] += b[j] } }
        return a
    }

    /// Forward pass on x (batch, input): every hidden layer's pre-activation a_l and output
    /// z_l = f(a_l), and y (batch, classes).
    public func forwardTrace(_ x: [T], batch: Int) -> (a: [[T]], z: [[T]], y: [T]) {
        let f = layout.spec.activation.function
        var a: [[T]] = [], z: [[T]] = []
        var input = x
        for layer in layout.layers.dropLast() {
            a.append(affine(input, layer, batch: batch))
            input = a.last!.map { f.reference($0) }
            z.append(input)
        }
        let logits = affine(input, layout.layers.last!, batch: batch)
        let o = layout.spec.output
        var y = [T]()
        for i in 0..<batch { y += Reference.softmax(logits[i * o..<(i + 1) * o]) }
        return (a, z, y)
    }

    /// Forward pass on x (batch, input): every hidden layer's output z_l and y (batch, classes).
    public func forward(_ x: [T], batch: Int) -> (z: [[T]], y: [T]) {
        let trace = forwardTrace(x, batch: batch)
        return (trace.z, trace.y)
    }

    /// Mean cross-entropy −Σ t·log(y + δ) / batch with one-hot t; δ = 1e-7 is the lecture's guard
    /// against log(0). Backprop (the lecture's too) is the exact gradient of the δ = 0 loss.
    public func loss(_ x: [T], labels: [Int], guard delta: T = T(1e-7)) -> T {
        let o = layout.spec.output
        let y = forward(x, batch: labels.count).y
        var sum: T = 0
        for (i, t) in labels.enumerated() { sum -= T.log(y[i * o + t] + delta) }
        return sum / T(labels.count)
    }

    /// Share of rows whose argmax of y equals the label.
    public func accuracy(_ x: [T], labels: [Int]) -> Double {
        let o = layout.spec.output
        let y = forward(x, batch: labels.count).y
        var right = 0
        for (i, t) in labels.enumerated() {
            let row = y[i * o..<(i + 1) * o]
            if row.firstIndex(of: row.max()!)! - i * o == t { right += 1 }
        }
        return Double(right) / Double(labels.count)
    }

    /// The lecture's backprop, layer by layer: d_L = dy = (y − t)/B; for each layer l from the top,
    /// dW_l = inputᵀ·d_l, db_l = Σ_rows d_l, and below it d_(l−1) = (d_l·W_lᵀ) ⊙ f'(a_(l−1)) with
    /// f' read from z_(l−1). Returned in the flat layout.
    public func gradient(_ x: [T], labels: [Int]) -> [T] {
        let batch = labels.count, o = layout.spec.output
        let f = layout.spec.activation.function
        let (z, y) = forward(x, batch: batch)
        var d = y
        for (i, t) in labels.enumerated() { d[i * o + t] -= 1 }
        d = d.map { $0 / T(batch) }
        var gradient = [T](repeating: 0, count: layout.count)
        for layer in layout.layers.reversed() {
            let input = layer.index == 0 ? x : z[layer.index - 1]
            let dW = Reference.matmul(Reference.transpose(input, rows: batch, columns: layer.inputs), d,
                                      m: layer.inputs, k: batch, n: layer.outputs)
            gradient.replaceSubrange(layer.weights, with: dW)
            for i in 0..<batch { for j in 0..<layer.outputs { gradient[layer.bias.lowerBound + j] += d[i * layer.outputs + j] } }
            guard layer.index > 0 else { break }
            let dz = Reference.matmul(d, Reference.transpose(tensor(layer.weights), rows: layer.inputs, columns: layer.outputs),
                                      m: batch, k: layer.outputs, n: layer.inputs)
            d = zip(dz, input).map { g, out in g * f.referenceDerivative(output: out) }
        }
        return gradient
    }
}

/// The lecture's numerical gradient: for every parameter θ_i, (f(θ + h·e_i) − f(θ − h·e_i)) / 2h,
/// restoring θ_i after each probe. h = 1e-4 is the lecture's: large enough that Float64 rounding in
/// f (about 1e-16·|f|/h) is negligible, small enough that the O(h²) truncation error is too.
public func numericalGradient<T: BinaryFloatingPoint>(of f: ([T]) -> T, at parameters: [T], h: T = T(1e-4),
                                                       indices: [Int]? = nil) -> [T] {
    var theta = parameters
    var grad = [T](repeating: 0, count: parameters.count)
    for i in indices ?? Array(parameters.indices) {
        let saved = theta[i]
        theta[i] = saved + h
        let plus = f(theta)
        theta[i] = saved - h
        let minus = f(theta)
        theta[i] = saved
        grad[i] = (plus - minus) / (2 * h)
    }
    return grad
}
