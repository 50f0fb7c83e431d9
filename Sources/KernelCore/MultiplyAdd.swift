/// How a kernel forms `acc + a * b`. Every kernel is generic over this, and each instantiation
/// module specializes it for its CPU target (see docs/kernels.md):
/// - `FusedMultiplyAdd` (one rounding) where the target has vector FMA: x86-64-v3 and arm64.
/// - `SeparateMultiplyAdd` (two roundings) on baseline x86-64, where `addingProduct` would become
///   eight calls to the libm `fmaf` per SIMD8 operation (about 100x slower than a multiply and an add).
public protocol MultiplyAdd {
    static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
}

public enum FusedMultiplyAdd: MultiplyAdd {
    @inlinable @inline(__always)
    public static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        acc.addingProduct(a, b)
    }
}

public enum SeparateMultiplyAdd: MultiplyAdd {
    @inlinable @inline(__always)
    public static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        acc + a * b
    }
}
