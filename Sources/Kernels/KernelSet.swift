import CSupport
@_exported import KernelCore
import KernelsAVX2
import KernelsAVX512

#if canImport(Glibc)
import Glibc
#endif

/// Which instantiation of the kernels a run uses. All workers of a run share one, so the
/// determinism contract holds. avx512 and avx2 give the same bits (both fuse every multiply-add,
/// lane by lane, in the same order; only the GEMM tile's width differs); baseline rounds
/// differently on x86-64 (separate multiply and add) and so gives different, equally valid, bits.
public enum KernelVariant: String, Sendable, CaseIterable {
    /// x86-64-v4: AVX-512 with a 16-lane GEMM tile, compiled with `-target-cpu skylake-avx512`
    /// (module KernelsAVX512).
    case avx512 = "avx512"
    /// x86-64-v3: AVX2 + FMA, compiled with `-target-cpu haswell` (module KernelsAVX2).
    case avx2 = "avx2"
    /// The package's default target: SSE2 without FMA on x86-64, NEON with FMA on arm64.
    case baseline = "baseline"

    /// The variant's name with its instruction set, as `ptrain topology` prints it.
    public var summary: String {
        switch self {
        case .avx512: return "avx512 (x86-64-v4: 16-wide AVX-512 GEMM tile with fused multiply-add)"
        case .avx2: return "avx2 (x86-64-v3: 8-wide AVX2 with fused multiply-add)"
        case .baseline:
            #if arch(x86_64)
            return "baseline (x86-64 SSE2, separate multiply and add)"
            #else
            return "baseline (NEON with fused multiply-add)"
            #endif
        }
    }

    /// True when this CPU can execute the variant.
    public var isSupported: Bool {
        switch self {
        case .baseline: return true
        case .avx2:
            #if arch(x86_64)
            return csupport_cpu_has_avx2_fma() != 0
            #else
            return false
            #endif
        case .avx512:
            #if arch(x86_64)
            return csupport_cpu_has_avx512() != 0
            #else
            return false
            #endif
        }
    }

    /// The variant whose bits this one gives: avx512 computes avx2's. Two ranks or two runs agree
    /// bit for bit when their variants have the same `rounding`.
    public var rounding: KernelVariant { self == .avx512 ? .avx2 : self }
}

/// The kernels a run uses, chosen once at start-up; every worker calls the same table.
public struct KernelSet: Sendable {
    /// Which variant these kernels are.
    public let variant: KernelVariant
    /// The variant's kernels, as the engine calls them.
    public let functions: KernelFunctions

    /// The table of `variant`, its GEMM blocked for this machine's caches (`CacheSizes.current`);
    /// the caller has checked `variant.isSupported`.
    public static func make(_ variant: KernelVariant, blocking: GEMMBlocking = GEMMBlocking(l1Bytes: CacheSizes.current.l1Data, l2Bytes: CacheSizes.current.l2)) -> KernelSet {
        precondition(variant.isSupported, "kernel variant \(variant.rawValue) is not supported by this CPU")
        switch variant {
        case .avx512: return KernelSet(variant: variant, functions: AVX512Kernels.functions(blocking: blocking))
        case .avx2: return KernelSet(variant: variant, functions: AVX2Kernels.functions(blocking: blocking))
        case .baseline: return KernelSet(variant: variant, functions: baselineFunctions(blocking: blocking))
        }
    }

    /// The package's default target: separate multiply and add on x86-64 (its baseline has no
    /// vector FMA, and `addingProduct` would become libm calls), fused on arm64 (NEON has FMA).
    static func baselineFunctions(blocking: GEMMBlocking) -> KernelFunctions {
        #if arch(x86_64)
        KernelFunctions(SeparateMultiplyAdd.self, vector: SIMD8<Float>.self, blocking: blocking)
        #else
        KernelFunctions(FusedMultiplyAdd.self, vector: SIMD8<Float>.self, blocking: blocking)
        #endif
    }

    /// The fastest variant this CPU supports (avx512, avx2, baseline), unless the environment
    /// variable `PTRAIN_KERNELS` names one: used by tests to exercise every path the CPU can run.
    public static func best() throws -> KernelSet {
        if let forced = ProcessEnvironment.value("PTRAIN_KERNELS"), !forced.isEmpty {
            guard let variant = KernelVariant(rawValue: forced) else {
                throw KernelSelectionError(message: "PTRAIN_KERNELS=\(forced) is not a kernel variant; use one of: \(KernelVariant.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard variant.isSupported else {
                let fastest = KernelVariant.allCases.first(where: \.isSupported)!.rawValue
                throw KernelSelectionError(message: "PTRAIN_KERNELS=\(forced): this CPU does not support the \(forced) kernels (its fastest are \(fastest)); unset PTRAIN_KERNELS or name a supported variant")
            }
            return make(variant)
        }
        return make(KernelVariant.allCases.first(where: \.isSupported)!)
    }
}

/// `PTRAIN_KERNELS` named a variant this CPU cannot run, or none that exists.
public struct KernelSelectionError: Error, CustomStringConvertible {
    /// One line naming the variant and what to do.
    public var message: String
    public var description: String { message }
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
