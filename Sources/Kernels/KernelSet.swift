import CSupport
@_exported import KernelCore
import KernelsAVX2

#if canImport(Glibc)
import Glibc
#endif

/// Which instantiation of the kernels a run uses. All workers of a run share one, so the
/// determinism contract holds; different variants round differently (fused vs separate
/// multiply-add) and so give different, equally valid, bits.
public enum KernelVariant: String, Sendable, CaseIterable {
    /// x86-64-v3: AVX2 + FMA, compiled with `-target-cpu x86-64-v3` (module KernelsAVX2).
    case avx2 = "avx2"
    /// The package's default target: SSE2 without FMA on x86-64, NEON with FMA on arm64.
    case baseline = "baseline"

    public var summary: String {
        switch self {
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
        }
    }
}

/// The kernels a run uses, chosen once at start-up; every worker calls the same table.
public struct KernelSet: Sendable {
    public let variant: KernelVariant
    public let functions: KernelFunctions

    /// The table of `variant`; the caller has checked `variant.isSupported`.
    public static func make(_ variant: KernelVariant) -> KernelSet {
        precondition(variant.isSupported, "kernel variant \(variant.rawValue) is not supported by this CPU")
        switch variant {
        case .avx2: return KernelSet(variant: variant, functions: AVX2Kernels.functions)
        case .baseline: return KernelSet(variant: variant, functions: baselineFunctions)
        }
    }

    /// The package's default target: separate multiply and add on x86-64 (its baseline has no
    /// vector FMA, and `addingProduct` would become libm calls), fused on arm64 (NEON has FMA).
    #if arch(x86_64)
    static let baselineFunctions = KernelFunctions(SeparateMultiplyAdd.self)
    #else
    static let baselineFunctions = KernelFunctions(FusedMultiplyAdd.self)
    #endif

    /// The fastest variant this CPU supports, unless the environment variable `PTRAIN_KERNELS`
    /// names one (`avx2` or `baseline`): used by tests to exercise the portable path on any machine.
    public static func best() throws -> KernelSet {
        if let forced = ProcessEnvironment.value("PTRAIN_KERNELS"), !forced.isEmpty {
            guard let variant = KernelVariant(rawValue: forced) else {
                throw KernelSelectionError(message: "PTRAIN_KERNELS=\(forced) is not a kernel variant; use one of: \(KernelVariant.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard variant.isSupported else {
                throw KernelSelectionError(message: "PTRAIN_KERNELS=\(forced): this CPU does not support the \(forced) kernels; unset PTRAIN_KERNELS")
            }
            return make(variant)
        }
        return make(KernelVariant.avx2.isSupported ? .avx2 : .baseline)
    }
}

public struct KernelSelectionError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
