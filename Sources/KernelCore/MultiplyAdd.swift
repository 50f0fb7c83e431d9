/// How a kernel forms `acc + a * b`. Every kernel is generic over this, and each instantiation
/// module specializes it for its CPU target (see docs/kernels.md):
/// - `FusedMultiplyAdd` (one rounding) where the target has vector FMA: x86-64-v3, x86-64-v4 and arm64.
/// - `SeparateMultiplyAdd` (two roundings) on baseline x86-64, where `addingProduct` would become
///   one call to the libm `fmaf` per lane (about 100x slower than a multiply and an add).
///
/// Both forms act lane by lane, so a lane's result does not depend on the vector width: the GEMM's
/// 8-wide (AVX2) and 16-wide (AVX-512) tiles give the same bits.
public protocol MultiplyAdd {
    static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
    /// The same operation at any vector width (the GEMM's tile is generic over it).
    static func madd<V: SIMD>(_ acc: V, _ a: V, _ b: V) -> V where V.Scalar == Float
}

/// `acc + a * b` with one rounding. Each instruction-set module (KernelsAVX2, KernelsAVX512)
/// declares a type of its own conforming to this, so that the generic kernels it specializes get
/// symbols of their own: with a shared type argument, two modules compiled for different CPUs
/// would emit their specializations under one symbol name, and the linker would keep one copy for
/// both (AVX-512 code in the AVX2 table, which dies with SIGILL on a CPU without AVX-512).
public protocol FusedMultiplyAddPolicy: MultiplyAdd {}

extension FusedMultiplyAddPolicy {
    @inlinable @inline(__always)
    public static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        acc.addingProduct(a, b)
    }

    @inlinable @inline(__always)
    public static func madd<V: SIMD>(_ acc: V, _ a: V, _ b: V) -> V where V.Scalar == Float {
        acc.addingProduct(a, b)
    }
}

/// Fused multiply-add for code compiled for the package's default target (arm64's baseline, tests).
public enum FusedMultiplyAdd: FusedMultiplyAddPolicy {}

public enum SeparateMultiplyAdd: MultiplyAdd {
    @inlinable @inline(__always)
    public static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        acc + a * b
    }

    @inlinable @inline(__always)
    public static func madd<V: SIMD>(_ acc: V, _ a: V, _ b: V) -> V where V.Scalar == Float {
        acc + a * b
    }
}
