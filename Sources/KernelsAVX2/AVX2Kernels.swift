import KernelCore

/// The kernel table specialized with fused multiply-add and a GEMM tile of SIMD8 vectors (6x16), in
/// a module compiled with `-target-cpu haswell` (AVX2 + FMA, Haswell / Zen 1 and later):
/// `KernelFunctions.init` is inlinable and generic, so its closures are code-generated here, for
/// that target. On arm64 this module is compiled without extra flags and is not used.
///
/// Never call these on a CPU without AVX2 and FMA: `Kernels.KernelSet` checks the CPU first.
public enum AVX2Kernels {
    public static func functions(blocking: GEMMBlocking) -> KernelFunctions {
        KernelFunctions(AVX2FusedMultiplyAdd.self, vector: SIMD8<Float>.self, blocking: blocking)
    }
}

/// This module's own fused multiply-add type (see `FusedMultiplyAddPolicy`): the kernels
/// specialized here get symbols no other module's specializations share.
enum AVX2FusedMultiplyAdd: FusedMultiplyAddPolicy {}
