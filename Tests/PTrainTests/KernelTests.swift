import Dataset
import KernelCore
import Kernels
import TestSupport
import XCTest

/// Fast kernels against their plain twins (Float64 reference), on awkward shapes.
final class KernelTests: XCTestCase {
    static let sizes = [1, 3, 7, 17, 100, 784]

    /// Runs the fast GEMM on row-major a (m, k) — or, with `transposeA`, on the transpose of a
    /// stored (k, m) — and row-major b (k, n).
    func fastMultiply(_ kernels: KernelSet, a: [Float], b: [Float], m: Int, k: Int, n: Int, transposeA: Bool = false,
                      c initial: [Float]? = nil) -> [Float] {
        var c = initial ?? [Float](repeating: .nan, count: m * n)
        let packed = FloatBuffer(count: GEMM.packedCount(k: k, n: n))
        let scratch = FloatBuffer(count: GEMM.packAScratchCount)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                GEMM.packB(MatrixView(rowMajor: bp.baseAddress!, rows: k, columns: n), into: packed.pointer, kRange: 0..<k)
                let view = transposeA ? MatrixView(rowMajor: ap.baseAddress!, rows: k, columns: m).transposed
                                      : MatrixView(rowMajor: ap.baseAddress!, rows: m, columns: k)
                c.withUnsafeMutableBufferPointer { cp in
                    kernels.functions.multiply(view, packed.pointer, MutableMatrixView(cp.baseAddress!, rows: m, columns: n),
                                               initial != nil, scratch.pointer)
                }
            }
        }
        return c
    }

    /// Error bound per element: γ_{k+2}·Σ_p |a_ip·b_pj| (+ u·|c| when accumulating). γ_k covers any
    /// summation order, so also the k-blocking; +2 covers the separate rounding of product and sum
    /// in the baseline variant and the final addition to c.
    func testGEMMMatchesFloat64ReferenceOnAwkwardShapes() {
        for kernels in supportedKernelSets {
            var worst = 0.0
            var random = TestRandom(seed: 11)
            for m in Self.sizes { for k in Self.sizes + [1100] { for n in Self.sizes where m * k * n <= 8_000_000 {
                let a = random.floats(m * k), b = random.floats(k * n)
                let transposeA = (m + k + n) % 2 == 1
                let aRowMajor = transposeA ? Reference.transpose(a, rows: k, columns: m) : a
                let fast = fastMultiply(kernels, a: a, b: b, m: m, k: k, n: n, transposeA: transposeA)
                let exact = Reference.matmul(aRowMajor.map(Double.init), b.map(Double.init), m: m, k: k, n: n)
                let magnitude = Reference.matmul(aRowMajor.map { abs(Double($0)) }, b.map { abs(Double($0)) }, m: m, k: k, n: n)
                assertClose(fast.map(Double.init), exact, tolerance: magnitude.map { gamma(k + 2) * $0 },
                            "\(kernels.variant) GEMM \(m)x\(k)x\(n) transposeA=\(transposeA)")
                for i in fast.indices where magnitude[i] > 0 { worst = max(worst, abs(Double(fast[i]) - exact[i]) / magnitude[i]) }
            } } }
            print("GEMM \(kernels.variant.rawValue): largest error relative to Σ|a·b|: \(worst)")
        }
    }

    func testGEMMAccumulates() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 5)
            let (m, k, n) = (7, 17, 19)
            let a = random.floats(m * k), b = random.floats(k * n), c = random.floats(m * n)
            let fast = fastMultiply(kernels, a: a, b: b, m: m, k: k, n: n, c: c)
            let product = Reference.matmul(a.map(Double.init), b.map(Double.init), m: m, k: k, n: n)
            let magnitude = Reference.matmul(a.map { abs(Double($0)) }, b.map { abs(Double($0)) }, m: m, k: k, n: n)
            assertClose(fast.map(Double.init), zip(product, c).map { $0 + Double($1) },
                        tolerance: zip(magnitude, c).map { gamma(k + 2) * $0 + float32Roundoff * abs(Double($1)) }, "accumulate")
        }
    }

    /// The determinism contract rests on this: a row's bits do not depend on which rows were
    /// computed with it (tile position, edge tile, slice start), nor on where the direct walk's
    /// row blocks of `GEMM.panelOuterRows` rows fall (one block for the slices of 1 to 33 rows,
    /// two or three for the others), nor on the narrow tile that n = 100 ends with.
    func testGEMMRowsAreBitwiseIndependentOfSlicing() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 9)
            let (m, k, n) = (100, 784, 100)
            let a = random.floats(m * k), b = random.floats(k * n)
            let full = fastMultiply(kernels, a: a, b: b, m: m, k: k, n: n)
            for cut in [1, 5, 6, 7, 33, 50, 99] {
                let top = fastMultiply(kernels, a: Array(a[0..<cut * k]), b: b, m: cut, k: k, n: n)
                let bottom = fastMultiply(kernels, a: Array(a[(cut * k)...]), b: b, m: m - cut, k: k, n: n)
                XCTAssertEqual((top + bottom).map(\.bitPattern), full.map(\.bitPattern), "\(kernels.variant) cut at \(cut)")
            }
        }
    }

    /// A transposed A (xᵀ, zᵀ as the engine reads them) gives the bits of a row-major copy of it,
    /// and a product's column slices those of the whole, for widths of 1 to 17 panels and inner
    /// dimensions of one and three k-blocks: a change of how A is read or B's panels are visited
    /// must keep every bit.
    func testGEMMTransposedAndColumnSlicesChangeNoBit() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 11)
            for (m, k, n) in [(37, 100, 100), (50, 1100, 131), (13, 300, 261)] {
                let aT = random.floats(k * m), b = random.floats(k * n)  // A stored (k, m): xᵀ as the engine reads it
                let transposed = fastMultiply(kernels, a: aT, b: b, m: m, k: k, n: n, transposeA: true)
                let rowMajor = (0..<m * k).map { aT[($0 % k) * m + $0 / k] }
                XCTAssertEqual(fastMultiply(kernels, a: rowMajor, b: b, m: m, k: k, n: n).map(\.bitPattern), transposed.map(\.bitPattern),
                               "\(kernels.variant) \(m)x\(k)x\(n)")
                let cut = 16 * (n / 32)
                let left = fastMultiply(kernels, a: rowMajor, b: (0..<k * cut).map { b[($0 / cut) * n + $0 % cut] }, m: m, k: k, n: cut)
                for i in 0..<m {
                    XCTAssertEqual(left[(i * cut)..<((i + 1) * cut)].map(\.bitPattern), transposed[(i * n)..<(i * n + cut)].map(\.bitPattern),
                                   "\(kernels.variant) \(m)x\(k)x\(n), columns 0..<\(cut), row \(i)")
                }
            }
        }
    }

    /// The Cephes method promises about 1 ulp on the reduced argument; 3·u (1.8e-7) bounds the
    /// polynomial, the two-part ln2 reduction and the final scaling together.
    func testExpRelativeError() {
        for kernels in supportedKernelSets {
            var worst = 0.0
            var x: Float = -87
            while x < 87.9 {  // lanes reach x + 0.0091; above 88 exp saturates by design
                let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0013 })
                let e = kernels.functions.exp(v)
                for l in 0..<8 {
                    let exact = Foundation.exp(Double(v[l]))
                    worst = max(worst, abs(Double(e[l]) - exact) / exact)
                }
                x += 0.0173
            }
            XCTAssertLessThanOrEqual(worst, 3 * float32Roundoff, "\(kernels.variant)")
            print("exp \(kernels.variant.rawValue): largest relative error \(worst)")
            // Saturation instead of overflow or NaN.
            let extreme = kernels.functions.exp(SIMD8(-1000, -88, 89, 1000, -.infinity, 0, 1, -1))
            XCTAssert(extreme[0] > 0 && extreme[0] < 1e-37 && extreme[3].isFinite && extreme[4] >= 0, "\(extreme)")
            XCTAssertEqual(extreme[5], 1)
        }
    }

    func testSoftmaxCrossEntropyMatchesReference() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 4)
            for (rows, classes) in [(1, 10), (5, 10), (3, 1), (4, 3), (2, 17), (3, 64)] {
                let logits = random.floats(rows * classes, scale: 20), bias = random.floats(classes, scale: 2)
                let labels = (0..<rows).map { _ in Int32(random.int(below: classes)) }
                let batch = rows + 3
                var dy = [Float](repeating: .nan, count: rows * classes), loss = [Float](repeating: .nan, count: rows)
                logits.withUnsafeBufferPointer { lp in bias.withUnsafeBufferPointer { bp in labels.withUnsafeBufferPointer { tp in
                    dy.withUnsafeMutableBufferPointer { dp in loss.withUnsafeMutableBufferPointer { lossp in
                        kernels.functions.softmaxCrossEntropy(MatrixView(rowMajor: lp.baseAddress!, rows: rows, columns: classes), bp.baseAddress!,
                                                              tp.baseAddress!, batch, MutableMatrixView(dp.baseAddress!, rows: rows, columns: classes),
                                                              lossp.baseAddress!)
                    } }
                } } }
                for i in 0..<rows {
                    let row = (0..<classes).map { Double(logits[i * classes + $0]) + Double(bias[$0]) }
                    let y = Reference.softmax(row[...])
                    let t = Int(labels[i])
                    // Relative errors of a few u in y (exp 3u, sum over ≤ 64 terms γ_64, divide u);
                    // |log| turns a relative error of y into an absolute one of the loss.
                    let yTolerance = (4 + Double(classes)) * float32Roundoff
                    XCTAssertEqual(Double(loss[i]), Reference.crossEntropy(y, label: t), accuracy: 2 * yTolerance + 1e-6,
                                   "\(kernels.variant) loss row \(i) of \(rows)x\(classes)")
                    for j in 0..<classes {
                        let expected = (y[j] - (j == t ? 1 : 0)) / Double(batch)
                        XCTAssertEqual(Double(dy[i * classes + j]), expected, accuracy: (yTolerance * y[j] + float32Roundoff) / Double(batch) * 2,
                                       "\(kernels.variant) dy[\(i), \(j)] of \(rows)x\(classes)")
                    }
                }
            }
        }
    }

    /// Every byte value, at every position of a vector and in tails: bit for bit the reference.
    func testNormalizePixelsMatchesReferenceBitwise() {
        let bytes: [UInt8] = (0..<(256 * 4 + 5)).map { (i: Int) -> UInt8 in UInt8((i * 37) % 256) }
        for kernels in supportedKernelSets {
            for count in [0, 1, 7, 8, 9, 784, bytes.count] {
                var fast = [Float](repeating: .nan, count: count), plain = [Float](repeating: .nan, count: count)
                bytes.withUnsafeBufferPointer { b in
                    fast.withUnsafeMutableBufferPointer { kernels.functions.normalizePixels(b.baseAddress!, count, $0.baseAddress!) }
                    plain.withUnsafeMutableBufferPointer { normalizePixels(b.baseAddress!, count: count, into: $0.baseAddress!) }
                }
                XCTAssertEqual(fast.map { $0.bitPattern }, plain.map { $0.bitPattern }, "\(kernels.variant) count \(count)")
            }
        }
    }

    func testSGDStepsMatchReferenceBitwise() {
        var random = TestRandom(seed: 8)
        for kernels in supportedKernelSets {
            for count in [1, 5, 16, 100, 1003] {
                let p0 = random.floats(count), g = random.floats(count)
                var p = p0
                p.withUnsafeMutableBufferPointer { pp in g.withUnsafeBufferPointer { kernels.functions.sgdStep(pp.baseAddress!, $0.baseAddress!, count, 0.1) } }
                XCTAssertEqual(p.map(\.bitPattern), zip(p0, g).map { $0 - Float(0.1) * $1 }.map(\.bitPattern), "\(kernels.variant) \(count)")
            }
        }
    }

    /// The contract behind "avx512 and avx2 give the same bits" and "the cache sizes change no
    /// bit": the GEMM's tile width and its blocking only decide which products are computed
    /// together, never an element's chain. The 16-lane tile and tiny or odd blockings (compiled here
    /// for the baseline target, with libm's correctly rounded fmaf for the fused policy) must match
    /// the table of every supported variant bit for bit, on shapes that take the direct walk and the
    /// blocked one (a transposed A across 16 or more panels; every shape also forced both ways), with edge
    /// tiles, several k-blocks and sub-blocks, and accumulation.
    func testGEMMBitsDoNotDependOnVectorWidthOrBlocking() {
        let blockings = [GEMMBlocking(l1Bytes: 32 << 10, l2Bytes: 512 << 10), GEMMBlocking(l1Bytes: 4096, l2Bytes: 65536),
                         GEMMBlocking(l1Bytes: 48 << 10, l2Bytes: 2 << 20), GEMMBlocking(l1Bytes: 4096, l2Bytes: 65536, walk: .blocked),
                         GEMMBlocking(l1Bytes: 32 << 10, l2Bytes: 512 << 10, walk: .direct)]
        // `stride`: A is rows 0..<m of the transpose of a (k, stride) matrix, as a layer's weight
        // gradient reads its input; with 16 or more panels it takes the blocked walk.
        let shapes: [(m: Int, k: Int, n: Int, stride: Int?, accumulate: Bool)] = [
            (7, 1100, 260, 256, false), (13, 530, 300, 512, true), (100, 784, 100, nil, false), (19, 37, 257, 19, false),
            (6, 600, 33, nil, true), (5, 3, 17, nil, false), (11, 300, 40, 256, false),
        ]
        var random = TestRandom(seed: 23)
        for shape in shapes {
            let (m, k, n) = (shape.m, shape.k, shape.n)
            let a = random.floats(k * (shape.stride ?? m)), b = random.floats(k * n)
            let initial: [Float]? = shape.accumulate ? random.floats(m * n) : nil
            // The same A copied row-major, which always takes the direct walk: the reference order.
            let rowMajorA = shape.stride.map { stride in (0..<m * k).map { a[($0 % k) * stride + $0 / k] } } ?? a
            func run(_ functions: KernelFunctions, rowMajor: Bool = false) -> [UInt32] {
                var c = initial ?? [Float](repeating: .nan, count: m * n)
                let packed = FloatBuffer(count: GEMM.packedCount(k: k, n: n)), scratch = FloatBuffer(count: GEMM.packAScratchCount)
                (rowMajor ? rowMajorA : a).withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        GEMM.packB(MatrixView(rowMajor: bp.baseAddress!, rows: k, columns: n), into: packed.pointer, kRange: 0..<k)
                        let strided = rowMajor ? nil : shape.stride
                        let view = strided.map { MatrixView(rowMajor: ap.baseAddress!, rows: k, columns: $0).transposed.rows(0..<m) }
                                   ?? MatrixView(rowMajor: ap.baseAddress!, rows: m, columns: k)
                        c.withUnsafeMutableBufferPointer { cp in
                            functions.multiply(view, packed.pointer, MutableMatrixView(cp.baseAddress!, rows: m, columns: n),
                                               shape.accumulate, scratch.pointer)
                        }
                    }
                }
                return c.map(\.bitPattern)
            }
            let name = "\(m)x\(k)x\(n) stride=\(shape.stride.map(String.init) ?? "row-major") accumulate=\(shape.accumulate)"
            for blocking in blockings {
                let fused8 = run(KernelFunctions(FusedMultiplyAdd.self, vector: SIMD8<Float>.self, blocking: blocking))
                let fused16 = run(KernelFunctions(FusedMultiplyAdd.self, vector: SIMD16<Float>.self, blocking: blocking))
                let separate8 = run(KernelFunctions(SeparateMultiplyAdd.self, vector: SIMD8<Float>.self, blocking: blocking))
                let separate16 = run(KernelFunctions(SeparateMultiplyAdd.self, vector: SIMD16<Float>.self, blocking: blocking))
                let direct = KernelFunctions(FusedMultiplyAdd.self, vector: SIMD8<Float>.self,
                                             blocking: GEMMBlocking(l1Bytes: blocking.l1Bytes, l2Bytes: blocking.l2Bytes, walk: .direct))
                assertSameBits(fused8, run(direct, rowMajor: true), "fused, vs the direct walk on a row-major A, \(name), \(blocking)")
                assertSameBits(fused16, fused8, "fused, 16 vs 8 lanes, \(name), \(blocking)")
                assertSameBits(separate16, separate8, "separate, 16 vs 8 lanes, \(name), \(blocking)")
                for kernels in supportedKernelSets {
                    let fusedVariant = kernels.variant.rounding == .avx2 || !isX86
                    assertSameBits(run(kernels.functions), fusedVariant ? fused8 : separate8, "\(kernels.variant) vs \(blocking), \(name)")
                }
            }
        }
    }

    /// Bitwise equality, reported by the first differing element rather than by both arrays.
    func assertSameBits(_ a: [UInt32], _ b: [UInt32], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        let common = min(a.count, b.count)
        guard let i = (0..<common).first(where: { a[$0] != b[$0] }) ?? (a.count == b.count ? nil : common) else { return }
        let value = { (bits: [UInt32]) in i < bits.count ? "\(Float(bitPattern: bits[i]))" : "none" }
        XCTFail("\(message): element \(i) differs (\(value(a)) vs \(value(b)))", file: file, line: line)
    }

    func testVariantsAreTriedWidestFirstAndAVX512RoundsLikeAVX2() {
        XCTAssertEqual(KernelVariant.allCases, [.avx512, .avx2, .baseline])
        XCTAssertEqual(KernelVariant.avx512.rounding, .avx2)
        XCTAssertEqual(KernelVariant.avx2.rounding, .avx2)
        XCTAssertEqual(KernelVariant.baseline.rounding, .baseline)
        if KernelVariant.avx512.isSupported { XCTAssert(KernelVariant.avx2.isSupported, "x86-64-v4 implies x86-64-v3") }
        XCTAssertEqual(KernelSet.make(.baseline).functions.gemmLanes, 8)
        if KernelVariant.avx512.isSupported { XCTAssertEqual(KernelSet.make(.avx512).functions.gemmLanes, 16) }
    }

    func testBaselineVariantIsAlwaysAvailableAndForcible() throws {
        XCTAssert(KernelVariant.baseline.isSupported)
        setenv("PTRAIN_KERNELS", "baseline", 1)
        defer { unsetenv("PTRAIN_KERNELS") }
        XCTAssertEqual(try KernelSet.best().variant, .baseline)
        setenv("PTRAIN_KERNELS", "sse9", 1)
        XCTAssertThrowsError(try KernelSet.best())
    }
}
