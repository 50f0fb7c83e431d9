import KernelCore

/// The kernel table specialized with fused multiply-add, in a module compiled with
/// `-target-cpu x86-64-v3` (AVX2 + FMA, Haswell / Zen 1 and later): `KernelFunctions.init` is
/// inlinable and generic, so its closures are code-generated here, for that target.
/// On arm64 this module is compiled without extra flags and is not used.
///
/// Never call these on a CPU without AVX2 and FMA: `Kernels.KernelSet` checks the CPU first.
public enum AVX2Kernels {
    public static let functions = KernelFunctions(FusedMultiplyAdd.self)
}
