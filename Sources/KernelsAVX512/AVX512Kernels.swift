import KernelCore

/// The kernel table specialized with fused multiply-add and a GEMM tile of SIMD16 vectors (6x32,
/// one zmm register per accumulator), in a module compiled with `-target-cpu skylake-avx512`
/// (x86-64-v4: AVX-512 F, CD, BW, DQ, VL). Every lane takes the same fused multiply-adds in the
/// same order as in the AVX2 table, so both give the same bits (docs/reproducibility.md).
/// On arm64 this module is compiled without extra flags and is not used.
///
/// Never call these on a CPU without AVX-512: `Kernels.KernelSet` checks the CPU (and that the OS
/// saves the zmm registers) first.
public enum AVX512Kernels {
    public static func functions(blocking: GEMMBlocking) -> KernelFunctions {
        KernelFunctions(AVX512FusedMultiplyAdd.self, vector: SIMD16<Float>.self, blocking: blocking)
    }
}

/// This module's own fused multiply-add type (see `FusedMultiplyAddPolicy`): the kernels
/// specialized here get symbols no other module's specializations share.
enum AVX512FusedMultiplyAdd: FusedMultiplyAddPolicy {}
