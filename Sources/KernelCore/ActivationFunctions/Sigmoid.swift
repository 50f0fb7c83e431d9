/// σ(a) = 1 / (1 + e^(−a)), the lecture's activation; σ'(a) = (1 − σ(a))·σ(a).
public enum Sigmoid: ActivationFunction {
    @inlinable @inline(__always)
    public static func forward<M: MultiplyAdd>(_: M.Type, _ a: SIMD8<Float>) -> SIMD8<Float> {
        Activations.sigmoid(M.self, a)
    }

    /// dz·(1 − z)·z, multiplied in the lecture's order (`dout * (1.0 - self.out) * self.out`).
    @inlinable @inline(__always)
    public static func backward<M: MultiplyAdd>(_: M.Type, _ dz: SIMD8<Float>, z: SIMD8<Float>) -> SIMD8<Float> {
        dz * (1 - z) * z
    }

    public static func reference<T: ReferenceReal>(_ a: T) -> T { Reference.sigmoid(a) }
    public static func referenceDerivative<T: ReferenceReal>(output z: T) -> T { (1 - z) * z }
}
