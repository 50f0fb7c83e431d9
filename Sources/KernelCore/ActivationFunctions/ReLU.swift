/// ReLU(a) = max(a, 0); its derivative is 1 where a > 0 and 0 elsewhere (0 at a = 0, as in the
/// lecture's `Relu` layer, whose mask is `x <= 0`).
public enum ReLU: ActivationFunction {
    @inlinable @inline(__always)
    public static func forward<M: MultiplyAdd>(_: M.Type, _ a: SIMD8<Float>) -> SIMD8<Float> {
        a.replacing(with: 0, where: a .<= 0)
    }

    /// z > 0 exactly where a > 0, so the mask is read from the output.
    @inlinable @inline(__always)
    public static func backward<M: MultiplyAdd>(_: M.Type, _ dz: SIMD8<Float>, z: SIMD8<Float>) -> SIMD8<Float> {
        dz.replacing(with: 0, where: z .<= 0)
    }

    public static func reference<T: ReferenceReal>(_ a: T) -> T { a > 0 ? a : 0 }
    public static func referenceDerivative<T: ReferenceReal>(output z: T) -> T { z > 0 ? 1 : 0 }
}
