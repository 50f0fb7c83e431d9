/// Packed, register-tiled single-precision matrix multiplication, `C (=|+=) A · B`.
///
/// Shapes: a: (m, k) any strides; b: (k, n) pre-packed by `packB`; c: (m, n) row-major.
///
/// Why it is tiled this way: the 6x16 micro-tile keeps 12 SIMD8 accumulators plus two B vectors and
/// one broadcast A value in the 16 AVX2 registers, i.e. 12 FMAs per 2 loads + 6 broadcasts, enough to
/// keep both FMA pipes busy. B is packed once into 16-column panels (k-major), so the micro-kernel
/// streams it linearly; A is read in place by broadcasts (its 6 rows x k-block stay in L1 while
/// every B panel passes). k is split into equal blocks of at most `maxKC` so a B panel slice stays in L2.
///
/// Determinism: every element is `Σ_k a[i,k]·b[k,j]` accumulated in increasing k from zero within a
/// k-block, blocks added in order; edge tiles run the same arithmetic on zero padding. So an
/// element's bits do not depend on which rows or columns were computed with it: a worker may
/// compute any row slice of a product and get the same bits as a single-threaded call.
public enum GEMM {
    public static let mr = 6
    public static let nr = 16
    /// At most 512 k-steps per block: a 512x16 B panel slice is 32 KB (L1-sized on Zen 4 and most
    /// arm64 cores); the training shapes (k = 784, 100, 10) use 2, 1 and 1 blocks.
    public static let maxKC = 512

    /// The number of k-blocks for a product with inner dimension `k`: ⌈k / maxKC⌉.
    @inlinable public static func kBlockCount(_ k: Int) -> Int { max((k + maxKC - 1) / maxKC, 1) }

    /// k-block `block` of `kBlockCount(k)` equal blocks: `block·k/blocks ..< (block+1)·k/blocks`.
    /// Every element of a product is one multiply-add chain per k-block, from zero, and the blocks'
    /// sums are added in order; the sparse kernels (`SparseKernels`) split their chains at the same
    /// places, so both paths give the same bits.
    @inlinable public static func kBlock(_ block: Int, of k: Int) -> Range<Int> {
        let blocks = kBlockCount(k)
        return block * k / blocks..<(block + 1) * k / blocks
    }

    /// Floats needed by `packB` for a (k, n) matrix: n rounded up to whole 16-column panels.
    @inlinable public static func packedCount(k: Int, n: Int) -> Int { ((n + nr - 1) / nr) * nr * max(k, 1) }

    /// Floats needed for the A-panel scratch of `multiply`.
    public static let packAScratchCount = mr * maxKC

    /// Packs rows `kRange` of `b` (k, n) into `packed`: panel p holds columns 16p..<16p+16, k-major,
    /// zero-padded past n. Packing disjoint k-ranges from different threads is safe.
    @inlinable
    public static func packB(_ b: MatrixView, into packed: UnsafeMutablePointer<Float>, kRange: Range<Int>) {
        let k = b.rows, n = b.columns
        let panels = (n + nr - 1) / nr
        for p in 0..<panels {
            let j0 = p * nr
            let width = min(nr, n - j0)
            let panel = packed + p * k * nr
            for kk in kRange {
                let dst = panel + kk * nr
                if width == nr && b.columnStride == 1 {
                    dst.update(from: b.base + kk * b.rowStride + j0, count: nr)
                } else {
                    for c in 0..<width { dst[c] = b.base[kk * b.rowStride + (j0 + c) * b.columnStride] }
                    for c in width..<nr { dst[c] = 0 }
                }
            }
        }
    }

    /// Packs rows `i0..<i0+rows` (rows <= 6), columns `k0..<k0+kc` of `a` k-major, zero-padding rows.
    @inlinable @inline(__always)
    static func packA(_ a: MatrixView, i0: Int, rows: Int, k0: Int, kc: Int, into out: UnsafeMutablePointer<Float>) {
        if a.columnStride == 1 {
            for r in 0..<mr {
                if r < rows {
                    let src = a.base + (i0 + r) * a.rowStride + k0
                    for kk in 0..<kc { out[kk * mr + r] = src[kk] }
                } else {
                    for kk in 0..<kc { out[kk * mr + r] = 0 }
                }
            }
        } else {
            for kk in 0..<kc {
                let src = a.base + (k0 + kk) * a.columnStride + i0 * a.rowStride
                for r in 0..<mr { out[kk * mr + r] = r < rows ? src[r * a.rowStride] : 0 }
            }
        }
    }

    /// `c = a · b` (or `c += a · b` with `accumulate`). `b` was packed by `packB` from a (a.columns, c.columns)
    /// matrix; `packAScratch` holds `packAScratchCount` floats private to the calling thread.
    ///
    /// Full 6-row tiles read A in place (a broadcast per element, at any strides), so neither x
    /// nor xᵀ is ever copied; only an edge tile of fewer than 6 rows is packed with zero rows.
    /// Both paths feed the micro-kernel the same values, so they round identically.
    @inlinable
    public static func multiply<M: MultiplyAdd>(_: M.Type, _ a: MatrixView, packedB b: UnsafePointer<Float>,
                                                into c: MutableMatrixView, accumulate: Bool,
                                                packAScratch: UnsafeMutablePointer<Float>) {
        let m = a.rows, k = a.columns, n = c.columns
        precondition(c.rows == m, "GEMM: a has \(m) rows, c has \(c.rows)")
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulate { for i in 0..<m { (c.base + i * c.rowStride).update(repeating: 0, count: n) } }
            return
        }
        let blocks = kBlockCount(k)
        let panels = (n + nr - 1) / nr
        for block in 0..<blocks {
            let kRange = kBlock(block, of: k)
            let k0 = kRange.lowerBound, k1 = kRange.upperBound
            let add = accumulate || block > 0
            var i0 = 0
            while i0 < m {
                let rows = min(mr, m - i0)
                let tile: UnsafePointer<Float>, rowStep: Int, kStep: Int
                if rows == mr {
                    tile = a.base + i0 * a.rowStride + k0 * a.columnStride
                    rowStep = a.rowStride
                    kStep = a.columnStride
                } else {
                    packA(a, i0: i0, rows: rows, k0: k0, kc: k1 - k0, into: packAScratch)
                    tile = UnsafePointer(packAScratch)
                    rowStep = 1
                    kStep = mr
                }
                for p in 0..<panels {
                    let j0 = p * nr
                    microKernel(M.self, kc: k1 - k0, a: tile, rowStep: rowStep, kStep: kStep,
                                b: b + p * k * nr + k0 * nr, c: c.base + i0 * c.rowStride + j0, ldc: c.rowStride,
                                rows: rows, columns: min(nr, n - j0), accumulate: add)
                }
                i0 += mr
            }
        }
    }

    /// The 6x16 register tile: `acc[r] = Σ_kk a[r·rowStep + kk·kStep] * b[kk*16 ..< kk*16+16]`, then
    /// stored (or added) to c.
    @inlinable @inline(__always)
    static func microKernel<M: MultiplyAdd>(_: M.Type, kc: Int, a: UnsafePointer<Float>, rowStep: Int, kStep: Int,
                                            b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                            rows: Int, columns: Int, accumulate: Bool) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        var c40 = SIMD8<Float>(), c41 = SIMD8<Float>(), c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
        // Two row pointers, three rows each: the addressing stays within base + index·{1,2}.
        var a0 = a, a3 = a + 3 * rowStep
        let r1 = rowStep, r2 = 2 * rowStep
        var bp = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let b0 = bp.loadUnaligned(as: SIMD8<Float>.self)
            let b1 = bp.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
            var av = SIMD8<Float>(repeating: a0[0]); c00 = M.madd(c00, av, b0); c01 = M.madd(c01, av, b1)
            av = SIMD8<Float>(repeating: a0[r1]); c10 = M.madd(c10, av, b0); c11 = M.madd(c11, av, b1)
            av = SIMD8<Float>(repeating: a0[r2]); c20 = M.madd(c20, av, b0); c21 = M.madd(c21, av, b1)
            av = SIMD8<Float>(repeating: a3[0]); c30 = M.madd(c30, av, b0); c31 = M.madd(c31, av, b1)
            av = SIMD8<Float>(repeating: a3[r1]); c40 = M.madd(c40, av, b0); c41 = M.madd(c41, av, b1)
            av = SIMD8<Float>(repeating: a3[r2]); c50 = M.madd(c50, av, b0); c51 = M.madd(c51, av, b1)
            a0 += kStep
            a3 += kStep
            bp += nr * 4
        }
        storeRow(c, 0, c00, c01, rows, columns, accumulate); storeRow(c + ldc, 1, c10, c11, rows, columns, accumulate)
        storeRow(c + 2 * ldc, 2, c20, c21, rows, columns, accumulate); storeRow(c + 3 * ldc, 3, c30, c31, rows, columns, accumulate)
        storeRow(c + 4 * ldc, 4, c40, c41, rows, columns, accumulate); storeRow(c + 5 * ldc, 5, c50, c51, rows, columns, accumulate)
    }

    /// Writes one accumulator row; a lane-wise scalar add equals the vector add bit for bit, so edge
    /// tiles round exactly like full ones.
    @inlinable @inline(__always)
    static func storeRow(_ dst: UnsafeMutablePointer<Float>, _ r: Int, _ v0: SIMD8<Float>, _ v1: SIMD8<Float>,
                         _ rows: Int, _ columns: Int, _ accumulate: Bool) {
        guard r < rows else { return }
        let raw = UnsafeMutableRawPointer(dst)
        if columns == nr {
            if accumulate {
                raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Float>.self) + v0, as: SIMD8<Float>.self)
                raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self) + v1, toByteOffset: 32, as: SIMD8<Float>.self)
            } else {
                raw.storeBytes(of: v0, as: SIMD8<Float>.self)
                raw.storeBytes(of: v1, toByteOffset: 32, as: SIMD8<Float>.self)
            }
        } else {
            for l in 0..<columns {
                let v = l < 8 ? v0[l] : v1[l - 8]
                dst[l] = accumulate ? dst[l] + v : v
            }
        }
    }
}
