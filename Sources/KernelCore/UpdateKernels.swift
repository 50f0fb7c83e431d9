/// The optimizers' element-wise updates, eight parameters at a time.
///
/// Every operation is a separately rounded IEEE multiply, add, divide or square root (never a
/// fused multiply-add), applied lane by lane, and a tail shorter than eight goes through the same
/// SIMD code on padding: so each parameter's new value depends only on its own θ, g and state, is
/// the same in every kernel variant, and equals the scalar formula in `Reference` bit for bit.
/// The formulas and their order are the contract in docs/reproducibility.md.
///
/// Generic over `MultiplyAdd` although no multiply-add is fused, so that each variant's module
/// code-generates them for its own CPU target, as every other kernel (`KernelFunctions`).
public enum UpdateKernels {
    /// √x of each lane, for lanes that are +0, positive or NaN (Adam's v/c2), as one vector square
    /// root. Why not `x.squareRoot()`: on Linux that is eight scalar square roots, each followed by
    /// a check that calls libm's `sqrtf` for a negative input to set errno, which also keeps the
    /// arithmetic around it from vectorizing. Taking each lane's magnitude first proves the input
    /// non-negative, so the check goes and the lanes become one instruction; for such lanes the
    /// magnitude is the lane itself, so the result is bit for bit `x.squareRoot()`.
    @inlinable @inline(__always)
    static func squareRoot(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var r = SIMD8<Float>()
        for i in 0..<8 { r[i] = x[i].magnitude.squareRoot() }
        return r
    }

    /// The gradient with L2 weight decay: g + λ·θ (λ = 0 leaves g's bits as they are).
    @inlinable @inline(__always)
    static func decayed(_ g: SIMD8<Float>, _ theta: SIMD8<Float>, _ decay: Float) -> SIMD8<Float> {
        decay == 0 ? g : g + decay * theta
    }

    /// SGD with L2 decay λ: θ ← θ − η·(g + λ·θ). (λ = 0 is `Activations.sgdStep`'s θ − η·g.)
    @inlinable
    public static func sgd<M: MultiplyAdd>(_: M.Type, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, count: Int, rate: Float,
                                         decay: Float) {
        var j = 0
        while j < count {
            let w = min(8, count - j)
            let theta = Activations.load(UnsafePointer(p + j), w)
            Activations.store(theta - rate * decayed(Activations.load(g + j, w), theta, decay), p + j, w)
            j += 8
        }
    }

    /// Heavy-ball momentum (the form PyTorch's SGD uses): g' = g + λ·θ; v ← μ·v + g';
    /// θ ← θ − η·v, or with Nesterov's correction θ ← θ − η·(g' + μ·v) (with the new v).
    @inlinable
    public static func momentum<M: MultiplyAdd>(_: M.Type, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                                              velocity v: UnsafeMutablePointer<Float>, count: Int, rate: Float, momentum mu: Float,
                                              decay: Float, nesterov: Bool) {
        var j = 0
        while j < count {
            let w = min(8, count - j)
            let theta = Activations.load(UnsafePointer(p + j), w)
            let gradient = decayed(Activations.load(g + j, w), theta, decay)
            let velocity = mu * Activations.load(UnsafePointer(v + j), w) + gradient
            Activations.store(velocity, v + j, w)
            let direction = nesterov ? gradient + mu * velocity : velocity
            Activations.store(theta - rate * direction, p + j, w)
            j += 8
        }
    }

    /// Adam (Kingma and Ba, 2015) with L2 decay, or AdamW's decoupled decay (Loshchilov and
    /// Hutter, 2019):
    ///
    ///     g' = g + λ·θ (Adam; AdamW uses g' = g)
    ///     m ← β1·m + (1 − β1)·g'          v ← β2·v + (1 − β2)·g'·g'
    ///     u = (m / c1) / (√(v / c2) + ε)    with c1 = 1 − β1^t, c2 = 1 − β2^t
    ///     θ ← θ − η·u (Adam)               θ ← θ − η·(u + λ·θ) (AdamW)
    ///
    /// c1 and c2 are given by the caller, computed from the step number t alone (not from running
    /// products), so a run split by checkpoints computes the same values.
    @inlinable
    public static func adam<M: MultiplyAdd>(_: M.Type, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                                          m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int, rate: Float,
                                          beta1: Float, beta2: Float, epsilon: Float, correction1 c1: Float, correction2 c2: Float,
                                          decay: Float, decoupled: Bool) {
        var j = 0
        while j < count {
            let w = min(8, count - j)
            let theta = Activations.load(UnsafePointer(p + j), w)
            let gradient = decoupled ? Activations.load(g + j, w) : decayed(Activations.load(g + j, w), theta, decay)
            let first = beta1 * Activations.load(UnsafePointer(m + j), w) + (1 - beta1) * gradient
            let second = beta2 * Activations.load(UnsafePointer(v + j), w) + (1 - beta2) * (gradient * gradient)
            Activations.store(first, m + j, w)
            Activations.store(second, v + j, w)
            let u = (first / c1) / (squareRoot(second / c2) + epsilon)
            let direction = decoupled && decay != 0 ? u + decay * theta : u
            Activations.store(theta - rate * direction, p + j, w)
            j += 8
        }
    }
}

extension Reference {
    /// `UpdateKernels.sgd` on one parameter.
    public static func sgd(_ theta: Float, _ g: Float, rate: Float, decay: Float) -> Float {
        theta - rate * (decay == 0 ? g : g + decay * theta)
    }

    /// `UpdateKernels.momentum` on one parameter: (new θ, new v).
    public static func momentum(_ theta: Float, _ g: Float, velocity: Float, rate: Float, momentum mu: Float, decay: Float,
                                nesterov: Bool) -> (Float, Float) {
        let gradient = decay == 0 ? g : g + decay * theta
        let v = mu * velocity + gradient
        return (theta - rate * (nesterov ? gradient + mu * v : v), v)
    }

    /// `UpdateKernels.adam` on one parameter: (new θ, new m, new v).
    public static func adam(_ theta: Float, _ g: Float, m: Float, v: Float, rate: Float, beta1: Float, beta2: Float, epsilon: Float,
                            correction1 c1: Float, correction2 c2: Float, decay: Float, decoupled: Bool) -> (Float, Float, Float) {
        let gradient = decoupled || decay == 0 ? g : g + decay * theta
        let first = beta1 * m + (1 - beta1) * gradient
        let second = beta2 * v + (1 - beta2) * (gradient * gradient)
        let u = (first / c1) / ((second / c2).squareRoot() + epsilon)
        return (theta - rate * (decoupled && decay != 0 ? u + decay * theta : u), first, second)
    }
}

/// Adam's per-step constants (`UpdateKernels.adam`), passed as one value.
public struct AdamConstants: Sendable, Equatable {
    public var rate, beta1, beta2, epsilon, correction1, correction2, decay: Float
    public var decoupled: Bool

    public init(rate: Float, beta1: Float, beta2: Float, epsilon: Float, correction1: Float, correction2: Float, decay: Float,
                decoupled: Bool) {
        (self.rate, self.beta1, self.beta2, self.epsilon) = (rate, beta1, beta2, epsilon)
        (self.correction1, self.correction2, self.decay, self.decoupled) = (correction1, correction2, decay, decoupled)
    }
}
