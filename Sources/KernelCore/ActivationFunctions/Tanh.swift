/// tanh(a); tanh'(a) = 1 − tanh²(a).
public enum Tanh: ActivationFunction {
    /// Cephes `tanhf`: for |a| < 0.625 the odd polynomial a + a³·P(a²) (no cancellation near 0);
    /// above it 1 − 2/(e^(2|a|) + 1) with the sign of a. Both branches are computed for all lanes
    /// and blended, so each lane's bits depend only on its own value. Relative error a few ulp;
    /// e^(2|a|) saturates at e^88 (`Activations.exp`), where 2/(e + 1) < 2^-126 and the result is 1.
    @inlinable @inline(__always)
    public static func forward<M: MultiplyAdd>(_: M.Type, _ a: SIMD8<Float>) -> SIMD8<Float> {
        let magnitude = a.replacing(with: -a, where: a .< 0)
        let e = Activations.exp(M.self, magnitude + magnitude)
        var large = 1 - 2 / (e + 1)
        large = large.replacing(with: -large, where: a .< 0)
        let s = a * a
        var p = SIMD8<Float>(repeating: -5.70498872745e-3)
        p = M.madd(SIMD8(repeating: 2.06390887954e-2), p, s)
        p = M.madd(SIMD8(repeating: -5.37397155531e-2), p, s)
        p = M.madd(SIMD8(repeating: 1.33314422036e-1), p, s)
        p = M.madd(SIMD8(repeating: -3.33332819422e-1), p, s)
        let small = M.madd(a, p * s, a)
        return large.replacing(with: small, where: magnitude .< 0.625)
    }

    /// dz·(1 − z·z).
    @inlinable @inline(__always)
    public static func backward<M: MultiplyAdd>(_: M.Type, _ dz: SIMD8<Float>, z: SIMD8<Float>) -> SIMD8<Float> {
        dz * (1 - z * z)
    }

    /// (1 − e^(−2|a|)) / (1 + e^(−2|a|)) with the sign of a (never overflows).
    public static func reference<T: ReferenceReal>(_ a: T) -> T {
        let e = T.exp(-2 * abs(a))
        let t = (1 - e) / (1 + e)
        return a < 0 ? -t : t
    }
    public static func referenceDerivative<T: ReferenceReal>(output z: T) -> T { 1 - z * z }
}
