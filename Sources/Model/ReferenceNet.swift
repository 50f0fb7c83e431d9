import Kernels

/// The plain twin of `TwoLayerNet` + `Backprop`: the lecture's formulas as scalar loops in `T`
/// (Float64 for the reference path, Float32 to compare like for like), same flat layout.
/// Slow by design; used by tests and the gradient check.
public struct ReferenceNet<T: ReferenceReal> {
    public let layout: ParameterLayout
    /// W1, b1, W2, b2, as in `ParameterLayout`.
    public var parameters: [T]

    public init(layout: ParameterLayout, parameters: [T]) {
        precondition(parameters.count == layout.count)
        self.layout = layout
        self.parameters = parameters
    }

    public init(_ net: TwoLayerNet) {
        self.init(layout: net.layout, parameters: net.parameterArray.map { T($0) })
    }

    func tensor(_ r: Range<Int>) -> [T] { Array(parameters[r]) }

    /// Forward pass on x (batch, input): returns z1 (batch, hidden) and y (batch, output).
    public func forward(_ x: [T], batch: Int) -> (z1: [T], y: [T]) {
        let s = layout.shape
        var a1 = Reference.matmul(x, tensor(layout.w1), m: batch, k: s.input, n: s.hidden)
        let b1 = tensor(layout.b1), b2 = tensor(layout.b2)
        for i in 0..<batch { for j in 0..<s.hidden { a1[i * s.hidden + j] += b1[j] } }
        let z1 = a1.map(Reference.sigmoid)
        var a2 = Reference.matmul(z1, tensor(layout.w2), m: batch, k: s.hidden, n: s.output)
        for i in 0..<batch { for j in 0..<s.output { a2[i * s.output + j] += b2[j] } }
        var y = [T]()
        for i in 0..<batch { y += Reference.softmax(a2[i * s.output..<(i + 1) * s.output]) }
        return (z1, y)
    }

    /// Mean cross-entropy −Σ t·log(y + δ) / batch with one-hot t; δ = 1e-7 is the lecture's guard
    /// against log(0). Backprop (the lecture's too) is the exact gradient of the δ = 0 loss.
    public func loss(_ x: [T], labels: [Int], guard delta: T = T(1e-7)) -> T {
        let o = layout.shape.output
        let y = forward(x, batch: labels.count).y
        var sum: T = 0
        for (i, t) in labels.enumerated() { sum -= T.log(y[i * o + t] + delta) }
        return sum / T(labels.count)
    }

    /// Share of rows whose argmax of y equals the label.
    public func accuracy(_ x: [T], labels: [Int]) -> Double {
        let o = layout.shape.output
        let y = forward(x, batch: labels.count).y
        var right = 0
        for (i, t) in labels.enumerated() {
            let row = y[i * o..<(i + 1) * o]
            if row.firstIndex(of: row.max()!)! - i * o == t { right += 1 }
        }
        return Double(right) / Double(labels.count)
    }

    /// The lecture's backprop: dy = (y − t)/B; dW2 = z1ᵀ·dy; db2 = Σ_rows dy; dz1 = dy·W2ᵀ;
    /// da1 = dz1·(1 − z1)·z1; dW1 = xᵀ·da1; db1 = Σ_rows da1. Returned in the flat layout.
    public func gradient(_ x: [T], labels: [Int]) -> [T] {
        let s = layout.shape, batch = labels.count
        let (z1, y) = forward(x, batch: batch)
        var dy = y
        for (i, t) in labels.enumerated() { dy[i * s.output + t] -= 1 }
        dy = dy.map { $0 / T(batch) }
        let dW2 = Reference.matmul(Reference.transpose(z1, rows: batch, columns: s.hidden), dy, m: s.hidden, k: batch, n: s.output)
        let dz1 = Reference.matmul(dy, Reference.transpose(tensor(layout.w2), rows: s.hidden, columns: s.output),
                                   m: batch, k: s.output, n: s.hidden)
        let da1 = zip(dz1, z1).map { d, z in d * (1 - z) * z }
        let dW1 = Reference.matmul(Reference.transpose(x, rows: batch, columns: s.input), da1, m: s.input, k: batch, n: s.hidden)
        var db1 = [T](repeating: 0, count: s.hidden), db2 = [T](repeating: 0, count: s.output)
        for i in 0..<batch {
            for j in 0..<s.hidden { db1[j] += da1[i * s.hidden + j] }
            for j in 0..<s.output { db2[j] += dy[i * s.output + j] }
        }
        return dW1 + db1 + dW2 + db2
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
