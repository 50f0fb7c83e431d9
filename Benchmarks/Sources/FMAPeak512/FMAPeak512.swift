import FMAPeak

/// `fmaChainLoop` on SIMD16 (zmm registers: this module is compiled for skylake-avx512). Call it
/// only where `KernelVariant.avx512.isSupported`.
@inline(never)
public func fmaChain512(iterations: Int, start: Float) -> (flops: Double, sink: Float) {
    fmaChainLoop(SIMD16<Float>.self, iterations: iterations, start: start)
}
