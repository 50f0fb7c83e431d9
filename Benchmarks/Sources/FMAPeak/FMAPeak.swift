/// One core's single-precision FMA ceiling: 12 independent accumulator chains of `V` (more than
/// FMA latency x pipes = 4 x 2 on Zen 4 and Intel cores), so the loop is throughput-bound.
/// Returns the FLOPs done (2 per lane per FMA) and a value that keeps the loop alive.
/// `start` should depend on the previous call's `sink`, so calls cannot be merged or hoisted.
/// Inlinable so that each module calling it compiles it for its own CPU target.
@inlinable @inline(__always)
public func fmaChainLoop<V: SIMD>(_: V.Type, iterations: Int, start: Float) -> (flops: Double, sink: Float) where V.Scalar == Float {
    // a <- c + a·m converges (to c / (1 − m)), so values stay normal and the timing honest.
    var a0 = V(repeating: start), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0
    var a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0
    let m = V(repeating: 0.5), c = V(repeating: 0.25)
    for _ in 0..<iterations {
        a0 = c.addingProduct(a0, m); a1 = c.addingProduct(a1, m); a2 = c.addingProduct(a2, m)
        a3 = c.addingProduct(a3, m); a4 = c.addingProduct(a4, m); a5 = c.addingProduct(a5, m)
        a6 = c.addingProduct(a6, m); a7 = c.addingProduct(a7, m); a8 = c.addingProduct(a8, m)
        a9 = c.addingProduct(a9, m); a10 = c.addingProduct(a10, m); a11 = c.addingProduct(a11, m)
    }
    let total = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11
    return (Double(iterations) * 12 * Double(V.scalarCount) * 2, total.sum())
}

/// The loop on SIMD8 (AVX2 ymm registers: this module is compiled for haswell).
@inline(never)
public func fmaChain(iterations: Int, start: Float) -> (flops: Double, sink: Float) {
    fmaChainLoop(SIMD8<Float>.self, iterations: iterations, start: start)
}
