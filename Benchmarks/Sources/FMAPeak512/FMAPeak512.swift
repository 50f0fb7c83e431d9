/// One core's single-precision FMA ceiling with AVX-512: `fmaChain`'s loop on SIMD16 (zmm)
/// vectors, in a module compiled with `-target-cpu skylake-avx512`. Call it only where
/// `KernelVariant.avx512.isSupported`.
@inline(never)
public func fmaChain512(iterations: Int, start: Float) -> (flops: Double, sink: Float) {
    var a0 = SIMD16<Float>(repeating: start), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0
    var a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0
    let m = SIMD16<Float>(repeating: 0.5), c = SIMD16<Float>(repeating: 0.25)
    for _ in 0..<iterations {
        a0 = c.addingProduct(a0, m); a1 = c.addingProduct(a1, m); a2 = c.addingProduct(a2, m)
        a3 = c.addingProduct(a3, m); a4 = c.addingProduct(a4, m); a5 = c.addingProduct(a5, m)
        a6 = c.addingProduct(a6, m); a7 = c.addingProduct(a7, m); a8 = c.addingProduct(a8, m)
        a9 = c.addingProduct(a9, m); a10 = c.addingProduct(a10, m); a11 = c.addingProduct(a11, m)
    }
    let total = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11
    return (Double(iterations) * 12 * 16 * 2, total.sum())
}
