/// Philox4x32-10, the counter-based generator of J. K. Salmon, M. A. Moraes, R. O. Dror and
/// D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC '11 (Random123).
///
/// Output block = bijection(counter, key): there is no state to advance, so any random number
/// of a run is a pure function of (seed, purpose, position). That is what makes ptrain's batches
/// independent of the worker count and of thread timing, and makes resume exact: a batch is
/// recomputed from (seed, iteration), never read from a generator that must be replayed.
public struct Philox4x32: Sendable, Equatable {
    /// The 64-bit key (from the seed and the stream).
    public let key: SIMD2<UInt32>

    /// The 64-bit seed is the key: low 32 bits in key[0], high 32 bits in key[1].
    public init(seed: UInt64) {
        key = SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// The generator of `key`.
    public init(key: SIMD2<UInt32>) { self.key = key }

    /// Ten rounds of Philox4x32 on `counter`.
    @inlinable
    public func block(_ counter: SIMD4<UInt32>) -> SIMD4<UInt32> {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 { k &+= SIMD2(0x9E37_79B9, 0xBB67_AE85) }
            let p0 = UInt64(0xD251_1F53) &* UInt64(c[0])
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c[2])
            c = SIMD4(UInt32(truncatingIfNeeded: p1 >> 32) ^ c[1] ^ k[0], UInt32(truncatingIfNeeded: p1),
                      UInt32(truncatingIfNeeded: p0 >> 32) ^ c[3] ^ k[1], UInt32(truncatingIfNeeded: p0))
        }
        return c
    }
}

/// The purposes that draw random numbers; each owns counter word 3, so their sequences never overlap.
/// The full counter layout is documented in docs/reproducibility.md.
public enum RandomStream: UInt32, Sendable {
    /// Initial weights: counter (block lo, block hi, 0, 1).
    case initialWeights = 1
    /// Batch indices with replacement: counter (row / 2, iteration lo, iteration hi, 2).
    case batchWithReplacement = 2
    /// Per-epoch shuffles: counter (step lo, step hi, epoch, 3).
    case epochShuffle = 3
}

extension Philox4x32 {
    /// A uniform integer in `0..<bound` from two 32-bit words: ⌊(w_hi·2^32 + w_lo) · bound / 2^64⌋.
    /// The bias is below bound / 2^64 (3e-15 for 60,000), far under anything a run could detect,
    /// and unlike rejection sampling it consumes a fixed number of words.
    @inlinable
    public static func uniform(_ lo: UInt32, _ hi: UInt32, below bound: Int) -> Int {
        precondition(bound > 0)
        let word = UInt64(hi) << 32 | UInt64(lo)
        return Int(word.multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Four independent N(0, 1) samples from one block, by the Box-Muller transform in Float64:
    /// (w0, w1) and (w2, w3) each give u1 = (w + 1)/2^32 in (0, 1] and u2 = w/2^32 in [0, 1), then
    /// r = sqrt(−2 ln u1), samples r·cos(2π u2) and r·sin(2π u2).
    @inlinable
    public static func normals(_ w: SIMD4<UInt32>) -> SIMD4<Double> {
        func pair(_ a: UInt32, _ b: UInt32) -> (Double, Double) {
            let u1 = (Double(a) + 1) * 0x1p-32
            let u2 = Double(b) * 0x1p-32
            let r = (-2 * _log(u1)).squareRoot()
            let theta = 2 * Double.pi * u2
            return (r * _cos(theta), r * _sin(theta))
        }
        let (a, b) = pair(w[0], w[1])
        let (c, d) = pair(w[2], w[3])
        return SIMD4(a, b, c, d)
    }
}
