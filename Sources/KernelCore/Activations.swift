#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Vectorized exp, sigmoid, the SGD step and the fused softmax + cross-entropy + dy, generic over
/// `MultiplyAdd` like the GEMM (the hidden layers' activations are in ActivationFunctions/). Tails (a row length that is not a multiple of 8) go through the same SIMD code on
/// a zero-padded vector, so an element's bits never depend on its position in a row.
public enum Activations {
    /// exp(x) for SIMD8, Cephes `expf` method: x = n·ln2 + r with n = round(x/ln2), |r| <= ln2/2;
    /// exp(r) by a degree-6 polynomial; 2^n assembled in the exponent bits.
    ///
    /// Max relative error about 1.2e-7 (2 ulp) over the clamped range; x is clamped to [-87, 88] so
    /// 2^n stays a normal float: exp(x) for x < -87 returns exp(-87) = 1.6e-38 instead of a smaller
    /// value, which no caller can distinguish from 0 after adding 1 or a softmax maximum of 1.
    @inlinable @inline(__always)
    public static func exp<M: MultiplyAdd>(_: M.Type, _ x: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -87), hi = SIMD8<Float>(repeating: 88)
        var v = x.replacing(with: lo, where: x .< lo)
        v = v.replacing(with: hi, where: v .> hi)
        // Adding 1.5·2^23 rounds to an integer and leaves it in the low mantissa bits.
        let magic = SIMD8<Float>(repeating: 12582912)
        let t = M.madd(magic, v, SIMD8(repeating: 1.44269504088896341))
        let n = t - magic
        var r = M.madd(v, n, SIMD8(repeating: -0.693359375))
        r = M.madd(r, n, SIMD8(repeating: 2.12194440e-4))
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = M.madd(SIMD8(repeating: 1.3981999507e-3), p, r)
        p = M.madd(SIMD8(repeating: 8.3334519073e-3), p, r)
        p = M.madd(SIMD8(repeating: 4.1665795894e-2), p, r)
        p = M.madd(SIMD8(repeating: 1.6666665459e-1), p, r)
        p = M.madd(SIMD8(repeating: 5.0000001201e-1), p, r)
        let y = M.madd(r + 1, p, r * r)
        // t's bit pattern is 0x4B400000 + n; the float 2^n has bits (n + 127) << 23.
        let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127
        return y * unsafeBitCast(bits &<< 23, to: SIMD8<Float>.self)
    }

    /// σ(x) = 1 / (1 + e^(−x)).
    @inlinable @inline(__always)
    public static func sigmoid<M: MultiplyAdd>(_: M.Type, _ x: SIMD8<Float>) -> SIMD8<Float> {
        1 / (1 + exp(M.self, -x))
    }

    /// Loads `count` (<= 8) floats, the remaining lanes set to `padding`; a short tail is copied
    /// through memory rather than inserted lane by lane (which compiles to a blend per lane).
    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ count: Int, padding: Float = 0) -> SIMD8<Float> {
        if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
        var v = SIMD8<Float>(repeating: padding)
        withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p, byteCount: count * 4) }
        return v
    }

    @inlinable @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self); return }
        withUnsafeBytes(of: v) { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: count * 4) }
    }

    /// `destination[i] = Float(source[i]) / 255` (the lecture's normalization), eight pixels at a
    /// time: widen, convert (exact for 0...255) and divide, so every value is the correctly rounded
    /// quotient, bit for bit the scalar `Float(p) / 255`.
    @inlinable
    public static func normalizePixels<M: MultiplyAdd>(_: M.Type, _ source: UnsafePointer<UInt8>, count: Int,
                                                      into destination: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= count {
            let bytes = UnsafeRawPointer(source + i).loadUnaligned(as: SIMD8<UInt8>.self)
            let v = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: bytes)) / 255
            UnsafeMutableRawPointer(destination + i).storeBytes(of: v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            destination[i] = Float(source[i]) / 255
            i += 1
        }
    }

    /// SGD on `count` values: `p[i] = p[i] − η·g[i]`, a multiply then a subtract (never fused, so
    /// every variant and every tail rounds alike).
    @inlinable
    public static func sgdStep<M: MultiplyAdd>(_: M.Type, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, count: Int,
                                              learningRate: Float) {
        let rate = SIMD8<Float>(repeating: learningRate)
        var j = 0
        while j + 8 <= count {
            store(load(UnsafePointer(p + j), 8) - rate * load(g + j, 8), p + j, 8)
            j += 8
        }
        while j < count {
            p[j] = p[j] - learningRate * g[j]
            j += 1
        }
    }

    /// The output layer fused: for each row i with logits `a[i, :] + bias`,
    /// `y = softmax(a + bias)` (row maximum subtracted before exp),
    /// `loss[i] = −log(y[label] + 1e-7)` and, when `dy` is given, `dy[i, :] = (y − onehot(label)) / batchSize`.
    /// With `dy == nil` it is the evaluation path (loss only).
    @inlinable
    public static func softmaxCrossEntropy<M: MultiplyAdd>(_: M.Type, logits a: MatrixView, bias: UnsafePointer<Float>,
                                                          labels: UnsafePointer<Int32>, batchSize: Int,
                                                          dy: MutableMatrixView?, loss: UnsafeMutablePointer<Float>) {
        precondition(a.columnStride == 1 && a.columns <= 64, "softmax rows are at most 64 classes")
        let n = a.columns
        let chunks = (n + 7) / 8
        let scale = Float(batchSize)
        // Lane numbers as floats: a float comparison compiles to one vector compare, where the
        // Int32 one became a lane-by-lane loop through memory.
        let laneIndex = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: chunks) { e in
            for i in 0..<a.rows {
                let row = a.base + i * a.rowStride
                let lowest = -Float.greatestFiniteMagnitude
                var vmax = SIMD8<Float>(repeating: lowest)
                for c in 0..<chunks {
                    let w = min(8, n - c * 8)
                    let v = load(row + c * 8, w, padding: 0) + load(bias + c * 8, w)
                    let masked = w == 8 ? v : v.replacing(with: lowest, where: laneIndex .>= Float(w))
                    e[c] = masked
                    vmax = vmax.replacing(with: masked, where: masked .> vmax)
                }
                var m = vmax[0]
                for l in 1..<8 where vmax[l] > m { m = vmax[l] }
                var vsum = SIMD8<Float>()
                for c in 0..<chunks {
                    let w = min(8, n - c * 8)
                    var x = exp(M.self, e[c] - m)
                    if w < 8 { x = x.replacing(with: 0, where: laneIndex .>= Float(w)) }
                    e[c] = x
                    vsum += x
                }
                let sum = vsum.sum()
                let label = Int(labels[i])
                let yt = e[label / 8][label % 8] / sum
                loss[i] = -logf(yt + 1e-7)
                if let dy {
                    let out = dy.base + i * dy.rowStride
                    for c in 0..<chunks {
                        let w = min(8, n - c * 8)
                        var y = e[c] / sum
                        if label / 8 == c { y[label % 8] -= 1 }
                        store(y / scale, out + c * 8, w)
                    }
                }
            }
        }
    }
}
