/// Packed, register-tiled single-precision matrix multiplication, `C (=|+=) A · B`.
///
/// Shapes: a: (m, k) any strides; b: (k, n) pre-packed by `packB`; c: (m, n) row-major.
///
/// Why it is tiled this way: the register tile is 6 rows x 2 vectors (6x16 with AVX2's SIMD8,
/// 6x32 with AVX-512's SIMD16): 12 accumulators, two B vectors and one broadcast A value, which fit
/// AVX2's 16 registers, and 12 FMAs per 2 vector loads + 6 broadcasts, enough to keep two FMA pipes
/// busy. B is packed once into 16-column panels (k-major), so the tile streams it linearly; a
/// 32-wide tile reads two neighbouring panels, so the packed layout (and the engine, which packs
/// 16-column panels per item) is the same for every vector width.
///
/// Two walks: `direct` reads each 6-row tile of A in place and passes it over the whole B, which
/// measured fastest for row-major A and most transposes; `blocked` packs A and walks B in
/// cache-sized blocks (`GEMMBlocking`), for a transposed A whose stride would make the direct walk
/// thrash the L1 (see `multiply`).
///
/// Determinism: every element is `Σ_k a[i,k]·b[k,j]` accumulated lane by lane in increasing k from
/// zero within a k-block, blocks added in order; edge tiles run the same arithmetic on zero padding
/// or on lanes that are never stored. So an element's bits depend neither on which rows or columns
/// were computed with it, nor on the vector width, nor on the cache blocking: a worker may compute
/// any row slice of a product, on any variant, and get the bits of a single-threaded call. Only the
/// k-blocks (`maxKC`) are part of the arithmetic, so they are a fixed constant, not tuned per cache.
public enum GEMM {
    public static let mr = 6
    /// The packed panel width. Fixed for every vector width: the engine packs Wᵀ in 16-column panels.
    public static let nr = 16
    /// At most 512 k-steps per block: a 512x16 B panel slice is 32 KB (L1-sized on Zen 4 and most
    /// arm64 cores); the training shapes (k = 784, 100, 10) use 2, 1 and 1 blocks. Changing it
    /// changes the bits of every product with k > 512 (docs/reproducibility.md).
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

    /// Floats of scratch `multiply` needs per calling thread (packed A and parked accumulators).
    public static let packAScratchCount = GEMMBlocking.scratchCount

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
        if rows == mr && a.columnStride == 1 {
            // Six row streams in, one contiguous stream out.
            let r0 = a.base + i0 * a.rowStride + k0, step = a.rowStride
            let r1 = r0 + step, r2 = r1 + step, r3 = r2 + step, r4 = r3 + step, r5 = r4 + step
            var o = out
            for kk in 0..<kc {
                o[0] = r0[kk]; o[1] = r1[kk]; o[2] = r2[kk]; o[3] = r3[kk]; o[4] = r4[kk]; o[5] = r5[kk]
                o += mr
            }
        } else if a.columnStride == 1 {
            for r in 0..<mr {
                if r < rows {
                    let src = a.base + (i0 + r) * a.rowStride + k0
                    for kk in 0..<kc { out[kk * mr + r] = src[kk] }
                } else {
                    for kk in 0..<kc { out[kk * mr + r] = 0 }
                }
            }
        } else if rows == mr && a.rowStride == 1 {
            // A transpose of a row-major matrix: each k-step's six values are consecutive.
            for kk in 0..<kc {
                (out + kk * mr).update(from: a.base + (k0 + kk) * a.columnStride + i0, count: mr)
            }
        } else {
            for kk in 0..<kc {
                let src = a.base + (k0 + kk) * a.columnStride + i0 * a.rowStride
                for r in 0..<mr { out[kk * mr + r] = r < rows ? src[r * a.rowStride] : 0 }
            }
        }
    }

    /// `c = a · b` (or `c += a · b` with `accumulate`) with a tile of 6 rows x 2 vectors of `V`
    /// (SIMD8 or SIMD16). `b` was packed by `packB` from a (a.columns, c.columns) matrix;
    /// `packAScratch` holds `packAScratchCount` floats private to the calling thread.
    @inlinable
    public static func multiply<M: MultiplyAdd, V: SIMD>(_: M.Type, _: V.Type, _ a: MatrixView, packedB b: UnsafePointer<Float>,
                                                         into c: MutableMatrixView, accumulate: Bool,
                                                         packAScratch: UnsafeMutablePointer<Float>,
                                                         blocking: GEMMBlocking) where V.Scalar == Float {
        let m = a.rows, k = a.columns, n = c.columns
        precondition(c.rows == m, "GEMM: a has \(m) rows, c has \(c.rows)")
        precondition(2 * V.scalarCount % nr == 0, "GEMM: a tile of two \(V.scalarCount)-lane vectors must cover whole panels")
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulate { for i in 0..<m { (c.base + i * c.rowStride).update(repeating: 0, count: n) } }
            return
        }
        let blockedWalk: Bool
        switch blocking.walk {
        case .automatic: blockedWalk = prefersBlockedWalk(a, columns: n)
        case .direct: blockedWalk = false
        case .blocked: blockedWalk = true
        }
        for block in 0..<kBlockCount(k) {
            let kRange = kBlock(block, of: k)
            let finish: TileEnd = accumulate || block > 0 ? .addToC : .storeToC
            if !blockedWalk {
                direct(M.self, V.self, a, packedB: b, into: c, kRange: kRange, finish: finish, packAScratch: packAScratch)
            } else {
                blocked(M.self, V.self, a, packedB: b, into: c, kRange: kRange, finish: finish, scratch: packAScratch, blocking: blocking)
            }
        }
    }

    /// The walk `multiply` takes by itself: blocked for a transposed A (a weight gradient inᵀ·d)
    /// across 16 or more panels, where the direct walk touches a new cache line per k-step of a
    /// tile and, when the input's width is a multiple of 256, lands them all in a few L1 sets;
    /// direct for a row-major A and for narrower products, where packing A costs more than it
    /// saves (`ptrain-bench kernels` times both walks side by side).
    @inlinable public static func prefersBlockedWalk(_ a: MatrixView, columns n: Int) -> Bool {
        a.columnStride != 1 && (n + nr - 1) / nr >= 16 && a.rows >= mr
    }

    /// One k-block, walked directly: each 6-row tile of A, read in place by broadcasts at any
    /// strides (only an edge tile of fewer rows is packed, with zero rows), passes the whole B.
    ///
    /// The order of the loops: A's rows are taken in blocks of `panelOuterRows`, and within a block
    /// the panels are the outer loop, so each B panel comes from memory once per block and serves
    /// every tile of it from L1, while the block's rows of A stay in L2. The engine's row items
    /// multiply 6 to 48 rows (one block) by a wide W (a 1024 x 1024 layer's packed W is 4 MB,
    /// beyond L2), and tile by tile they would stream all of W once per 6 rows; a large product
    /// (2048 x 2048: 4 MB of B per k-block) would likewise stream B from L3 once per tile instead
    /// of once per 48 rows. Every order computes every element by the same chain.
    @inlinable
    static func direct<M: MultiplyAdd, V: SIMD>(_: M.Type, _: V.Type, _ a: MatrixView, packedB b: UnsafePointer<Float>,
                                                into c: MutableMatrixView, kRange: Range<Int>, finish: TileEnd,
                                                packAScratch: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        let m = a.rows, k = a.columns, n = c.columns
        let panels = (n + nr - 1) / nr
        let tilePanels = 2 * V.scalarCount / nr
        let k0 = kRange.lowerBound, kc = kRange.count
        let tiles = (m + mr - 1) / mr
        // An edge tile of fewer than mr rows is packed once, with zero rows.
        if m % mr != 0 { packA(a, i0: (tiles - 1) * mr, rows: m % mr, k0: k0, kc: kc, into: packAScratch) }
        @inline(__always) func tileProduct(_ t: Int, panel p: Int) {
            let i0 = t * mr, rows = min(mr, m - i0)
            let full = rows == mr
            let tile = full ? a.base + i0 * a.rowStride + k0 * a.columnStride : UnsafePointer(packAScratch)
            let (b0, b1) = tileB(V.self, b, panel: p, panels: panels, k: k, k0: k0)
            let columns = min(2 * V.scalarCount, n - p * nr)
            if columns <= V.scalarCount {
                narrowKernel(M.self, V.self, kc: kc, a: tile, rowStep: full ? a.rowStride : 1, kStep: full ? a.columnStride : mr,
                             b: b0, c: c.base + i0 * c.rowStride + p * nr, ldc: c.rowStride, rows: rows, columns: columns, end: finish)
                return
            }
            microKernel(M.self, V.self, kc: kc, a: tile, rowStep: full ? a.rowStride : 1, kStep: full ? a.columnStride : mr,
                        b0: b0, b1: b1, c: c.base + i0 * c.rowStride + p * nr, ldc: c.rowStride, rows: rows,
                        columns: columns, start: .zero, end: finish)
        }
        let blockTiles = panelOuterRows / mr
        for first in stride(from: 0, to: tiles, by: blockTiles) {
            for p in stride(from: 0, to: panels, by: tilePanels) {
                for t in first..<min(first + blockTiles, tiles) { tileProduct(t, panel: p) }
            }
        }
    }

    /// The register tile of a last tile that needs only its first vector (n = 100 leaves 4 columns
    /// of a 16-wide AVX2 tile): 6 rows x 1 vector, `acc[r] = Σ_kk a[r·rowStep + kk·kStep] *
    /// b[kk·16 ..< kk·16 + V.scalarCount]` from zero in increasing k, the chain `microKernel` runs
    /// for the same element. Half the FMAs of a full tile, none of them on a second vector whose
    /// lanes are never stored; six chains keep fewer FMAs in flight than twelve, so this tile
    /// runs below the peak, but the full tile spends half its work on nothing.
    @inlinable @inline(__always)
    static func narrowKernel<M: MultiplyAdd, V: SIMD>(_: M.Type, _: V.Type, kc: Int, a: UnsafePointer<Float>, rowStep: Int, kStep: Int,
                                                      b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                                      rows: Int, columns: Int, end: TileEnd) where V.Scalar == Float {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var a0 = a, a3 = a + 3 * rowStep
        let r1 = rowStep, r2 = 2 * rowStep
        var bp = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let v = bp.loadUnaligned(as: V.self)
            var av = V(repeating: a0[0]); c0 = M.madd(c0, av, v)
            av = V(repeating: a0[r1]); c1 = M.madd(c1, av, v)
            av = V(repeating: a0[r2]); c2 = M.madd(c2, av, v)
            av = V(repeating: a3[0]); c3 = M.madd(c3, av, v)
            av = V(repeating: a3[r1]); c4 = M.madd(c4, av, v)
            av = V(repeating: a3[r2]); c5 = M.madd(c5, av, v)
            a0 += kStep
            a3 += kStep
            bp += nr * 4
        }
        let add = end == .addToC
        storeRow(c, 0, c0, V(), rows, columns, add); storeRow(c + ldc, 1, c1, V(), rows, columns, add)
        storeRow(c + 2 * ldc, 2, c2, V(), rows, columns, add); storeRow(c + 3 * ldc, 3, c3, V(), rows, columns, add)
        storeRow(c + 4 * ldc, 4, c4, V(), rows, columns, add); storeRow(c + 5 * ldc, 5, c5, V(), rows, columns, add)
    }

    /// The rows of a block of `direct`'s walk: 8 tiles, whose rows of a k-block (48 x 512 floats,
    /// 96 KB) stay in L2 while each B panel serves them all.
    public static let panelOuterRows = 8 * mr

    /// One k-block of a large product, blocked for the caches (`GEMMBlocking`) as in BLIS: for each
    /// column block of B and row block of A, the k-block is walked in sub-blocks short enough that
    /// one tile's B slice stays in L1 while every row tile of the packed A block (in L2) passes it.
    /// A sub-block continues each element's chain from where the previous one stopped: the
    /// accumulators are parked in c (when the k-block's sum is stored) or in scratch (when it is
    /// added to c), and storing a Float and loading it back is exact, so the bits are those of one
    /// unbroken chain.
    @inlinable
    static func blocked<M: MultiplyAdd, V: SIMD>(_: M.Type, _: V.Type, _ a: MatrixView, packedB b: UnsafePointer<Float>,
                                                 into c: MutableMatrixView, kRange: Range<Int>, finish: TileEnd,
                                                 scratch: UnsafeMutablePointer<Float>, blocking: GEMMBlocking) where V.Scalar == Float {
        let m = a.rows, k = a.columns, n = c.columns
        let panels = (n + nr - 1) / nr
        let tileColumns = 2 * V.scalarCount, tilePanels = tileColumns / nr
        let k0 = kRange.lowerBound, kc = kRange.count
        let kSub = blocking.kSub(tileColumns: tileColumns)
        let subBlocks = (kc + kSub - 1) / kSub
        let longest = (kc + subBlocks - 1) / subBlocks
        // Parking (a sum added to c) bounds a column block by the scratch; storing does not, and B
        // only needs to stay in L3 between row blocks (its tile slice is what L1 holds).
        let blockPanels = subBlocks == 1 || finish == .storeToC ? panels
                        : blocking.panelsPerColumnBlock(kc: longest, tilePanels: tilePanels)
        let blockRows = blocking.rowsPerRowBlock(kSub: longest)
        let parked = scratch + blockRows * longest
        var p0 = 0
        while p0 < panels {
            let p1 = min(panels, p0 + blockPanels)
            var i0 = 0
            while i0 < m {
                let i1 = min(m, i0 + blockRows)
                for sub in 0..<subBlocks {
                    let s0 = k0 + sub * kc / subBlocks, s1 = k0 + (sub + 1) * kc / subBlocks
                    let ks = s1 - s0
                    // A's rows i0..<i1, columns s0..<s1, as consecutive k-major 6-row tiles.
                    var t = i0
                    while t < i1 {
                        packA(a, i0: t, rows: min(mr, i1 - t), k0: s0, kc: ks, into: scratch + (t - i0) * ks)
                        t += mr
                    }
                    var p = p0
                    while p < p1 {
                        let (b0, b1) = tileB(V.self, b, panel: p, panels: panels, k: k, k0: s0)
                        let columns = min(tileColumns, n - p * nr)
                        var i = i0
                        while i < i1 {
                            let rows = min(mr, i1 - i)
                            let tileC = c.base + i * c.rowStride + p * nr
                            // Parked accumulators of tile (i, p) when the block's sum is added to c.
                            let slot = parked + (((i - i0) / mr) * ((p1 - p0 + tilePanels - 1) / tilePanels) + (p - p0) / tilePanels) * mr * tileColumns
                            let start: TileStart = sub == 0 ? .zero : (finish == .storeToC ? .fromC : .from(UnsafePointer(slot)))
                            let end: TileEnd = sub == subBlocks - 1 ? finish : (finish == .storeToC ? .storeToC : .park(slot))
                            microKernel(M.self, V.self, kc: ks, a: scratch + (i - i0) * ks, rowStep: 1, kStep: mr, b0: b0, b1: b1,
                                        c: tileC, ldc: c.rowStride, rows: rows, columns: columns, start: start, end: end)
                            i += mr
                        }
                        p += tilePanels
                    }
                }
                i0 = i1
            }
            p0 = p1
        }
    }

    /// Panel `panel`'s B vectors for k-step `k0`: a 16-wide tile reads both halves of one panel, a
    /// 32-wide tile panels p and p + 1 (past the last panel, p again, into lanes never stored).
    @inlinable @inline(__always)
    static func tileB<V: SIMD>(_: V.Type, _ b: UnsafePointer<Float>, panel p: Int, panels: Int, k: Int, k0: Int)
        -> (UnsafePointer<Float>, UnsafePointer<Float>) where V.Scalar == Float {
        let first = b + p * k * nr + k0 * nr
        if 2 * V.scalarCount == nr { return (first, first + V.scalarCount) }
        return (first, p + 1 < panels ? first + k * nr : first)
    }

    /// Where a tile's accumulators start.
    public enum TileStart {
        case zero
        /// From the tile's rows and columns of c, where the previous sub-block stored them.
        case fromC
        /// From a parked full tile (6 rows x 2 vectors, row-major).
        case from(UnsafePointer<Float>)
    }

    /// Where a tile's accumulators go.
    public enum TileEnd: Equatable {
        case storeToC
        case addToC
        /// Into a full tile (6 rows x 2 vectors, row-major), for the next sub-block.
        case park(UnsafeMutablePointer<Float>)
    }

    /// The register tile: `acc[r][v] (+)= Σ_kk a[r·rowStep + kk·kStep] * b_v[kk·16 ..< kk·16 + V.scalarCount]`
    /// for the two vectors v, each accumulator taking its products in increasing k.
    @inlinable @inline(__always)
    static func microKernel<M: MultiplyAdd, V: SIMD>(_: M.Type, _: V.Type, kc: Int, a: UnsafePointer<Float>, rowStep: Int, kStep: Int,
                                                     b0: UnsafePointer<Float>, b1: UnsafePointer<Float>,
                                                     c: UnsafeMutablePointer<Float>, ldc: Int,
                                                     rows: Int, columns: Int, start: TileStart, end: TileEnd) where V.Scalar == Float {
        let w = V.scalarCount
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        switch start {
        case .zero: break
        case .fromC:
            (c00, c01) = loadRow(c, 0, rows, columns); (c10, c11) = loadRow(c + ldc, 1, rows, columns)
            (c20, c21) = loadRow(c + 2 * ldc, 2, rows, columns); (c30, c31) = loadRow(c + 3 * ldc, 3, rows, columns)
            (c40, c41) = loadRow(c + 4 * ldc, 4, rows, columns); (c50, c51) = loadRow(c + 5 * ldc, 5, rows, columns)
        case .from(let t):
            let full = 2 * w
            (c00, c01) = loadRow(t, 0, mr, full); (c10, c11) = loadRow(t + full, 1, mr, full)
            (c20, c21) = loadRow(t + 2 * full, 2, mr, full); (c30, c31) = loadRow(t + 3 * full, 3, mr, full)
            (c40, c41) = loadRow(t + 4 * full, 4, mr, full); (c50, c51) = loadRow(t + 5 * full, 5, mr, full)
        }
        // Two row pointers, three rows each: the addressing stays within base + index·{1,2}.
        var a0 = a, a3 = a + 3 * rowStep
        let r1 = rowStep, r2 = 2 * rowStep
        var bp0 = UnsafeRawPointer(b0), bp1 = UnsafeRawPointer(b1)
        @inline(__always) func step(_ a0: UnsafePointer<Float>, _ a3: UnsafePointer<Float>) {
            let v0 = bp0.loadUnaligned(as: V.self)
            let v1 = bp1.loadUnaligned(as: V.self)
            var av = V(repeating: a0[0]); c00 = M.madd(c00, av, v0); c01 = M.madd(c01, av, v1)
            av = V(repeating: a0[r1]); c10 = M.madd(c10, av, v0); c11 = M.madd(c11, av, v1)
            av = V(repeating: a0[r2]); c20 = M.madd(c20, av, v0); c21 = M.madd(c21, av, v1)
            av = V(repeating: a3[0]); c30 = M.madd(c30, av, v0); c31 = M.madd(c31, av, v1)
            av = V(repeating: a3[r1]); c40 = M.madd(c40, av, v0); c41 = M.madd(c41, av, v1)
            av = V(repeating: a3[r2]); c50 = M.madd(c50, av, v0); c51 = M.madd(c51, av, v1)
        }
        for _ in 0..<kc {
            step(a0, a3)
            a0 += kStep
            a3 += kStep
            bp0 += nr * 4
            bp1 += nr * 4
        }
        switch end {
        case .park(let t):
            let full = 2 * w
            storeRow(t, 0, c00, c01, mr, full, false); storeRow(t + full, 1, c10, c11, mr, full, false)
            storeRow(t + 2 * full, 2, c20, c21, mr, full, false); storeRow(t + 3 * full, 3, c30, c31, mr, full, false)
            storeRow(t + 4 * full, 4, c40, c41, mr, full, false); storeRow(t + 5 * full, 5, c50, c51, mr, full, false)
        case .storeToC, .addToC:
            let add = end == .addToC
            storeRow(c, 0, c00, c01, rows, columns, add); storeRow(c + ldc, 1, c10, c11, rows, columns, add)
            storeRow(c + 2 * ldc, 2, c20, c21, rows, columns, add); storeRow(c + 3 * ldc, 3, c30, c31, rows, columns, add)
            storeRow(c + 4 * ldc, 4, c40, c41, rows, columns, add); storeRow(c + 5 * ldc, 5, c50, c51, rows, columns, add)
        }
    }

    /// Loads one accumulator row stored by `storeRow`; lanes past `columns` (never stored) are 0.
    @inlinable @inline(__always)
    static func loadRow<V: SIMD>(_ src: UnsafePointer<Float>, _ r: Int, _ rows: Int, _ columns: Int) -> (V, V) where V.Scalar == Float {
        guard r < rows else { return (V(), V()) }
        let width = V.scalarCount
        if columns == 2 * width {
            let raw = UnsafeRawPointer(src)
            return (raw.loadUnaligned(as: V.self), raw.loadUnaligned(fromByteOffset: width * 4, as: V.self))
        }
        var v0 = V(), v1 = V()
        for l in 0..<columns { if l < width { v0[l] = src[l] } else { v1[l - width] = src[l] } }
        return (v0, v1)
    }

    /// Writes one accumulator row; a lane-wise scalar add equals the vector add bit for bit, so edge
    /// tiles round exactly like full ones.
    @inlinable @inline(__always)
    static func storeRow<V: SIMD>(_ dst: UnsafeMutablePointer<Float>, _ r: Int, _ v0: V, _ v1: V,
                                  _ rows: Int, _ columns: Int, _ accumulate: Bool) where V.Scalar == Float {
        guard r < rows else { return }
        let raw = UnsafeMutableRawPointer(dst)
        let width = V.scalarCount
        if columns == 2 * width {
            let second = width * 4
            if accumulate {
                raw.storeBytes(of: raw.loadUnaligned(as: V.self) + v0, as: V.self)
                raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: second, as: V.self) + v1, toByteOffset: second, as: V.self)
            } else {
                raw.storeBytes(of: v0, as: V.self)
                raw.storeBytes(of: v1, toByteOffset: second, as: V.self)
            }
        } else {
            for l in 0..<columns {
                let v = l < width ? v0[l] : v1[l - width]
                dst[l] = accumulate ? dst[l] + v : v
            }
        }
    }
}

/// How `GEMM.multiply` walks a large product: performance only, no bit depends on it.
///
/// Sizes from the per-core caches (`Kernels.CacheSizes`), as in BLIS: a k sub-block keeps one
/// tile's B slice (sub-block x tile width) within half the L1; a row block of packed A and a column
/// block of B each take about a quarter of the L2, leaving room for c and the parked accumulators.
/// The packed A block and the parked tiles live in the caller's scratch (`GEMM.packAScratchCount`),
/// which the bounds below size.
public struct GEMMBlocking: Sendable, Equatable {
    /// Per-core level-1 data and level-2 cache sizes, bytes.
    public var l1Bytes: Int, l2Bytes: Int
    /// Which walk `GEMM.multiply` takes.
    public var walk: Walk

    /// `automatic` chooses per product (`GEMM.multiply`); the others force one walk, for the
    /// benchmark that compares them (`ptrain-bench kernels`) and for tests.
    public enum Walk: String, Sendable, Equatable {
        case automatic, direct, blocked
    }

    @inlinable public init(l1Bytes: Int, l2Bytes: Int, walk: Walk = .automatic) {
        self.l1Bytes = max(l1Bytes, 4096)
        self.l2Bytes = max(l2Bytes, 65536)
        self.walk = walk
    }

    /// k-steps per sub-block for a tile `tileColumns` wide: its B slice in half the L1.
    @inlinable public func kSub(tileColumns: Int) -> Int {
        min(GEMMBlocking.maxKSub, max(32, l1Bytes / 2 / (tileColumns * 4)))
    }

    /// Rows of A packed per row block of sub-blocks `kSub` long: a quarter of the L2, whole tiles.
    @inlinable public func rowsPerRowBlock(kSub: Int) -> Int {
        min(GEMMBlocking.maxRows, max(GEMM.mr, l2Bytes / 4 / (kSub * 4) / GEMM.mr * GEMM.mr))
    }

    /// Whole tiles' panels per column block for sub-blocks of `kc` steps: a quarter of the L2, at
    /// least one tile, at most `maxColumns` columns.
    @inlinable public func panelsPerColumnBlock(kc: Int, tilePanels: Int) -> Int {
        let panelBytes = max(kc, 1) * GEMM.nr * MemoryLayout<Float>.size
        let fit = min(l2Bytes / 4 / panelBytes, GEMMBlocking.maxColumns / GEMM.nr)
        return max(1, fit / tilePanels) * tilePanels
    }

    /// Bounds on the blocks, which size the scratch every caller allocates.
    public static let maxKSub = 512, maxRows = 192, maxColumns = 512

    /// Floats of scratch `GEMM.multiply` needs: the packed A block and the parked tiles of one
    /// row block x column block.
    public static let scratchCount = maxRows * maxKSub + maxRows * maxColumns
}
