/// Layer 1 on sparse input rows (`SparseRows`): the products x·W1 and xᵀ·da1 touch only the
/// non-zero entries of x, 19% of an MNIST image, instead of all 784 pixels.
///
/// Determinism and equality with the dense path: an element of x·W1 is the multiply-add chain
/// Σ_k x[i,k]·W1[k,j] over increasing k, from zero, split at the GEMM's k-blocks (`GEMM.kBlock`),
/// exactly as the dense GEMM forms it, but without the terms where x[i,k] = 0. Such a term adds
/// x·w = ±0 to the chain, which leaves a non-zero sum unchanged, so for finite weights both paths
/// give the same bits (at most the sign of an all-zero sum differs, and the bias addition that
/// follows erases it). The same holds for xᵀ·da1, whose chains run over the batch rows.
///
/// Register tiling: a tile of up to `maximumVectors` SIMD8 accumulators (104 columns) stays in
/// registers while the entries of a row stream past; wider products loop over column tiles.
public enum SparseKernels {
    /// 13 accumulators + 1 broadcast value fit the 16 AVX2 registers; 13 x 8 = 104 ≥ 100 columns,
    /// so the lecture's hidden layer is one tile.
    public static let maximumVectors = 13

    /// `out[0..<columns] (= | +=) Σ_p table[values[p]] · w[indices[p]·rowStride + 0..<columns]`,
    /// p over `entries` in order, one multiply-add chain per column from zero.
    ///
    /// Reads whole SIMD8 vectors of w: a row's last partial vector may read up to 7 floats past
    /// `columns` (the buffer needs that slack; `FloatBuffer` has it). Writes exactly `columns` floats.
    @inlinable
    public static func rowTimesMatrix<M: MultiplyAdd>(_: M.Type, _ rows: SparseRows, entries: Range<Int>,
                                                     w: UnsafePointer<Float>, rowStride: Int, columns: Int,
                                                     into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        var j0 = 0
        while j0 < columns {
            let width = min(columns - j0, maximumVectors * 8)
            let tile = RowTile<M>(rows: rows, entries: entries, w: w + j0, rowStride: rowStride, columns: width,
                                  out: out + j0, accumulate: accumulate)
            dispatch((width + 7) / 8, tile)
            j0 += width
        }
    }

    /// `acc[(indices[p] − firstColumn)·accStride + 0..<columns] += table[values[p]] · d[0..<columns]`
    /// for p over `entries`: row i's contribution to xᵀ·d, scattered into the rows of `acc`.
    ///
    /// Reads and writes whole SIMD8 vectors: `accStride` must be a multiple of 8 that is ≥ `columns`
    /// (the padding lanes receive junk), and d may be read up to 7 floats past `columns`.
    @inlinable
    public static func scatterRow<M: MultiplyAdd>(_: M.Type, _ rows: SparseRows, entries: Range<Int>, firstColumn: Int,
                                                 d: UnsafePointer<Float>, columns: Int,
                                                 into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        precondition(accStride % 8 == 0 && accStride >= columns)
        var j0 = 0
        while j0 < columns {
            let width = min(columns - j0, maximumVectors * 8)
            let tile = ScatterTile<M>(rows: rows, entries: entries, firstColumn: firstColumn, d: d + j0,
                                      acc: acc + j0, accStride: accStride)
            dispatch((width + 7) / 8, tile)
            j0 += width
        }
    }

    /// Calls `tile.run(V1.self)` ... `tile.run(V13.self)` for 1...13 vectors, so each width is a
    /// separate specialization whose unused accumulators compile away.
    @inlinable @inline(__always)
    static func dispatch<T: SparseTile>(_ vectors: Int, _ tile: T) {
        switch vectors {
        case 1: tile.run(V1.self)
        case 2: tile.run(V2.self)
        case 3: tile.run(V3.self)
        case 4: tile.run(V4.self)
        case 5: tile.run(V5.self)
        case 6: tile.run(V6.self)
        case 7: tile.run(V7.self)
        case 8: tile.run(V8.self)
        case 9: tile.run(V9.self)
        case 10: tile.run(V10.self)
        case 11: tile.run(V11.self)
        case 12: tile.run(V12.self)
        default: tile.run(V13.self)
        }
    }
}

/// A compile-time number of SIMD8 vectors (1...13) for the sparse kernels' register tiles.
public protocol VectorCount { static var count: Int { get } }
public enum V1: VectorCount { @inlinable public static var count: Int { 1 } }
public enum V2: VectorCount { @inlinable public static var count: Int { 2 } }
public enum V3: VectorCount { @inlinable public static var count: Int { 3 } }
public enum V4: VectorCount { @inlinable public static var count: Int { 4 } }
public enum V5: VectorCount { @inlinable public static var count: Int { 5 } }
public enum V6: VectorCount { @inlinable public static var count: Int { 6 } }
public enum V7: VectorCount { @inlinable public static var count: Int { 7 } }
public enum V8: VectorCount { @inlinable public static var count: Int { 8 } }
public enum V9: VectorCount { @inlinable public static var count: Int { 9 } }
public enum V10: VectorCount { @inlinable public static var count: Int { 10 } }
public enum V11: VectorCount { @inlinable public static var count: Int { 11 } }
public enum V12: VectorCount { @inlinable public static var count: Int { 12 } }
public enum V13: VectorCount { @inlinable public static var count: Int { 13 } }

@usableFromInline
protocol SparseTile {
    func run<N: VectorCount>(_: N.Type)
}

@usableFromInline typealias Lanes = SIMD8<Float>

@inlinable @inline(__always)
func loadLanes(_ p: UnsafeRawPointer, _ j: Int) -> Lanes { p.loadUnaligned(fromByteOffset: j * 32, as: Lanes.self) }

@inlinable @inline(__always)
func storeLanes(_ p: UnsafeMutableRawPointer, _ j: Int, _ v: Lanes) { p.storeBytes(of: v, toByteOffset: j * 32, as: Lanes.self) }

/// One column tile of `SparseKernels.rowTimesMatrix`.
@usableFromInline
struct RowTile<M: MultiplyAdd>: SparseTile {
    @usableFromInline let rows: SparseRows
    @usableFromInline let entries: Range<Int>
    @usableFromInline let w: UnsafePointer<Float>
    @usableFromInline let rowStride: Int
    @usableFromInline let columns: Int
    @usableFromInline let out: UnsafeMutablePointer<Float>
    @usableFromInline let accumulate: Bool

    @inlinable
    init(rows: SparseRows, entries: Range<Int>, w: UnsafePointer<Float>, rowStride: Int, columns: Int,
         out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        self.rows = rows
        self.entries = entries
        self.w = w
        self.rowStride = rowStride
        self.columns = columns
        self.out = out
        self.accumulate = accumulate
    }

    @inlinable @inline(__always)
    func run<N: VectorCount>(_: N.Type) {
        let n = N.count
        var a0 = Lanes(), a1 = Lanes(), a2 = Lanes(), a3 = Lanes(), a4 = Lanes(), a5 = Lanes(), a6 = Lanes()
        var a7 = Lanes(), a8 = Lanes(), a9 = Lanes(), a10 = Lanes(), a11 = Lanes(), a12 = Lanes()
        let base = UnsafeRawPointer(w), rowBytes = rowStride * 4
        let indices = rows.indices, values = rows.values, table = rows.table
        for p in entries {
            let r = base + Int(indices[p]) * rowBytes
            let x = Lanes(repeating: table[Int(values[p])])
            a0 = M.madd(a0, x, loadLanes(r, 0))
            if n > 1 { a1 = M.madd(a1, x, loadLanes(r, 1)) }
            if n > 2 { a2 = M.madd(a2, x, loadLanes(r, 2)) }
            if n > 3 { a3 = M.madd(a3, x, loadLanes(r, 3)) }
            if n > 4 { a4 = M.madd(a4, x, loadLanes(r, 4)) }
            if n > 5 { a5 = M.madd(a5, x, loadLanes(r, 5)) }
            if n > 6 { a6 = M.madd(a6, x, loadLanes(r, 6)) }
            if n > 7 { a7 = M.madd(a7, x, loadLanes(r, 7)) }
            if n > 8 { a8 = M.madd(a8, x, loadLanes(r, 8)) }
            if n > 9 { a9 = M.madd(a9, x, loadLanes(r, 9)) }
            if n > 10 { a10 = M.madd(a10, x, loadLanes(r, 10)) }
            if n > 11 { a11 = M.madd(a11, x, loadLanes(r, 11)) }
            if n > 12 { a12 = M.madd(a12, x, loadLanes(r, 12)) }
        }
        let sums = (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12)
        withUnsafeBytes(of: sums) { raw in
            for v in 0..<n {
                let lanes = min(8, columns - v * 8)
                let sum = raw.loadUnaligned(fromByteOffset: v * 32, as: Lanes.self)
                let dst = out + v * 8
                Activations.store(accumulate ? Activations.load(UnsafePointer(dst), lanes) + sum : sum, dst, lanes)
            }
        }
    }
}

/// One column tile of `SparseKernels.scatterRow`.
@usableFromInline
struct ScatterTile<M: MultiplyAdd>: SparseTile {
    @usableFromInline let rows: SparseRows
    @usableFromInline let entries: Range<Int>
    @usableFromInline let firstColumn: Int
    @usableFromInline let d: UnsafePointer<Float>
    @usableFromInline let acc: UnsafeMutablePointer<Float>
    @usableFromInline let accStride: Int

    @inlinable
    init(rows: SparseRows, entries: Range<Int>, firstColumn: Int, d: UnsafePointer<Float>,
         acc: UnsafeMutablePointer<Float>, accStride: Int) {
        self.rows = rows
        self.entries = entries
        self.firstColumn = firstColumn
        self.d = d
        self.acc = acc
        self.accStride = accStride
    }

    @inlinable @inline(__always)
    func run<N: VectorCount>(_: N.Type) {
        let n = N.count
        let dp = UnsafeRawPointer(d)
        let d0 = loadLanes(dp, 0)
        let d1 = n > 1 ? loadLanes(dp, 1) : Lanes(), d2 = n > 2 ? loadLanes(dp, 2) : Lanes()
        let d3 = n > 3 ? loadLanes(dp, 3) : Lanes(), d4 = n > 4 ? loadLanes(dp, 4) : Lanes()
        let d5 = n > 5 ? loadLanes(dp, 5) : Lanes(), d6 = n > 6 ? loadLanes(dp, 6) : Lanes()
        let d7 = n > 7 ? loadLanes(dp, 7) : Lanes(), d8 = n > 8 ? loadLanes(dp, 8) : Lanes()
        let d9 = n > 9 ? loadLanes(dp, 9) : Lanes(), d10 = n > 10 ? loadLanes(dp, 10) : Lanes()
        let d11 = n > 11 ? loadLanes(dp, 11) : Lanes(), d12 = n > 12 ? loadLanes(dp, 12) : Lanes()
        let base = UnsafeMutableRawPointer(acc) - firstColumn * accStride * 4, rowBytes = accStride * 4
        let indices = rows.indices, values = rows.values, table = rows.table
        for p in entries {
            let r = base + Int(indices[p]) * rowBytes
            let x = Lanes(repeating: table[Int(values[p])])
            storeLanes(r, 0, M.madd(loadLanes(r, 0), x, d0))
            if n > 1 { storeLanes(r, 1, M.madd(loadLanes(r, 1), x, d1)) }
            if n > 2 { storeLanes(r, 2, M.madd(loadLanes(r, 2), x, d2)) }
            if n > 3 { storeLanes(r, 3, M.madd(loadLanes(r, 3), x, d3)) }
            if n > 4 { storeLanes(r, 4, M.madd(loadLanes(r, 4), x, d4)) }
            if n > 5 { storeLanes(r, 5, M.madd(loadLanes(r, 5), x, d5)) }
            if n > 6 { storeLanes(r, 6, M.madd(loadLanes(r, 6), x, d6)) }
            if n > 7 { storeLanes(r, 7, M.madd(loadLanes(r, 7), x, d7)) }
            if n > 8 { storeLanes(r, 8, M.madd(loadLanes(r, 8), x, d8)) }
            if n > 9 { storeLanes(r, 9, M.madd(loadLanes(r, 9), x, d9)) }
            if n > 10 { storeLanes(r, 10, M.madd(loadLanes(r, 10), x, d10)) }
            if n > 11 { storeLanes(r, 11, M.madd(loadLanes(r, 11), x, d11)) }
            if n > 12 { storeLanes(r, 12, M.madd(loadLanes(r, 12), x, d12)) }
        }
    }
}
