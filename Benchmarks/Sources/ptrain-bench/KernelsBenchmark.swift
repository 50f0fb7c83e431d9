import ArgumentParser
import Dataset
import FMAPeak
import FMAPeak512
import Foundation
import Kernels

/// Carries each FMA-chain call's result into the next call.
nonisolated(unsafe) var chainState: Float = 1

struct KernelsBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GFLOP/s of each GEMM on the training shapes against the FMA peak measured in the same run, the sparse layer-one kernels, and one worker's share of layer one under each 2-worker split.")

    @Option(help: "Repeats per measurement (the median is reported).")
    var repeats = 7

    @Option(help: ArgumentHelp("Write the results as JSON into this folder (kernels.json).", valueName: "folder"))
    var output = "Benchmarks/results"

    /// One GEMM's result in kernels.json.
    struct Row: Codable {
        var name: String
        var m: Int, k: Int, n: Int
        var gflops_median: Double, gflops_min: Double, gflops_max: Double
        /// Against the one-core peak measured just before this product.
        var percent_of_peak: Double
        var peak_gflops: Double
    }

    typealias Document = Recorded<Results>

    struct Results: Codable {
        var kernels: String
        /// The one-core FMA peak at the CPU's widest vectors, measured in the same run: the floor.
        var peak_gflops: Stats
        /// Which vectors `peak_gflops` used ("AVX-512, SIMD16" or "AVX2, SIMD8").
        var peak_vectors: String
        /// The AVX2 peak as well, where the widest vectors are AVX-512.
        var avx2_peak_gflops: Stats?
        var gemms: [Row]
        /// The GEMM's two walks side by side (`benchmarkWalks`).
        var walks: [WalkRow]
    }

    func run() throws {
        let kernels = try KernelSet.best()
        // The floor is the widest vectors' peak; where that is AVX-512, the AVX2 peak is shown beside it.
        let chainFlops = widestFMAChain(iterations: 200_000, start: 0).flops
        func measurePeak() -> Stats {
            Stats(rates(repeats: repeats, work: 1) { chainState = widestFMAChain(iterations: 200_000, start: chainState * 1e-9).sink }.map { $0 * chainFlops / 1e9 })
        }
        let peak1 = measurePeak()
        print("kernels: \(kernels.variant.summary)")
        print("FMA peak, one core (12-chain loop, \(widestVectors)): median \(fixed(peak1.median)) GFLOP/s (min \(fixed(peak1.min)), max \(fixed(peak1.max)))")
        var avx2Peak: Stats? = nil
        if KernelVariant.avx512.isSupported {
            let avx2 = Stats(rates(repeats: repeats, work: 1) { chainState = fmaChain(iterations: 200_000, start: chainState * 1e-9).sink }.map { $0 * 200_000 * 192 / 1e9 })
            print("FMA peak, one core (12-chain loop, AVX2, SIMD8): median \(fixed(avx2.median)) GFLOP/s")
            avx2Peak = avx2
        }
        print("")
        print("shape (m x k x n)            use                     GFLOP/s median   min     max    % of the peak measured just before (median of \(repeats) rounds)")
        let shapes: [(String, Int, Int, Int, Bool)] = [
            ("x·W1   (1 worker)", 100, 784, 100, false), ("x·W1   (2 workers)", 50, 784, 100, false),
            ("xᵀ·da1 (1 worker)", 784, 100, 100, true), ("xᵀ·da1 (2 workers)", 392, 100, 100, true),
            ("z1·W2", 100, 100, 10, false), ("dy·W2ᵀ", 100, 10, 100, false), ("z1ᵀ·dy", 100, 100, 10, true),
            // Larger shapes a user trains (issue "Kernels at the machine's real peak": M, N, K >= 256),
            // among them the heavy run's (784-1024-10, batch 1000) and a deep net's hidden layers.
            ("square 256", 256, 256, 256, false), ("square 512", 512, 512, 512, false),
            ("square 1024", 1024, 1024, 1024, false), ("square 2048", 2048, 2048, 2048, false),
            ("x·W1   heavy (1 worker)", 1000, 784, 1024, false), ("xᵀ·da1 heavy (1 worker)", 784, 1000, 1024, true),
            ("z·W deep (batch 512)", 512, 1024, 1024, false), ("zᵀ·d deep (batch 512)", 1024, 512, 1024, true),
        ]
        // The shared machine's speed drifts within a run, in bursts that can last seconds: each
        // round times every product once, each against a peak measured just before it, and a
        // product's figure is the median over the rounds (of its rates, and of its ratios to the
        // peak), so a burst weighs on one round of every product instead of all of one product.
        let peakProbe = RateProbe(work: chainFlops / 1e9) { chainState = widestFMAChain(iterations: 200_000, start: chainState * 1e-9).sink }
        let probes = try shapes.map { try gemmProbe(kernels, m: $0.1, k: $0.2, n: $0.3, transposedA: $0.4) }
        var samples = [[(rate: Double, peak: Double)]](repeating: [], count: shapes.count)
        for _ in 0..<repeats {
            for (i, probe) in probes.enumerated() {
                let peak = peakProbe.sample()
                samples[i].append((probe.sample(), peak))
            }
        }
        var results: [Row] = []
        for (i, (name, m, k, n, _)) in shapes.enumerated() {
            let r = Stats(samples[i].map(\.rate))
            let pct = 100 * Stats(samples[i].map { $0.rate / $0.peak }).median
            print("\(String(format: "%-5d x %-5d x %-5d", m, k, n))  \(name.padding(toLength: 22, withPad: " ", startingAt: 0))  \(fixed(r.median).leftPad(8))  \(fixed(r.min).leftPad(7)) \(fixed(r.max).leftPad(7))  \(fixed(pct).leftPad(6))%")
            results.append(Row(name: name, m: m, k: k, n: n, gflops_median: r.median, gflops_min: r.min, gflops_max: r.max,
                               percent_of_peak: pct, peak_gflops: Stats(samples[i].map(\.peak)).median))
        }
        let large = results.filter { min($0.m, $0.k, $0.n) >= 256 }.map(\.percent_of_peak)
        print("GEMMs with M, N, K >= 256: \(fixed(large.min() ?? 0))-\(fixed(large.max() ?? 0))% of the one-core peak")
        let walks = try benchmarkWalks(kernels)
        let document = Document(Results(kernels: kernels.variant.rawValue, peak_gflops: peak1, peak_vectors: widestVectors,
                                        avx2_peak_gflops: avx2Peak, gemms: results, walks: walks))
        try document.write(to: "\(output)/kernels.json")
        print("wrote \(output)/kernels.json")
        try benchmarkSparse(kernels, peak: peak1.median)
    }

    /// One product under both of the GEMM's walks (`GEMMBlocking.Walk`), timed in alternating
    /// rounds in this process; `chosen` is the walk `automatic` takes.
    struct WalkRow: Codable {
        var name: String
        var m: Int, k: Int, n: Int
        /// A's stride between k-steps: A is rows 0..<m of the transpose of a (k, stride) matrix;
        /// nil for a row-major A.
        var stride: Int?
        var chosen: String
        var gflops_direct: Double, gflops_blocked: Double
    }

    /// The direct and the blocked walk side by side on weight-gradient shapes (inᵀ·d, A a slice
    /// of a transposed input) and row-major products, checked bit for bit against each other.
    func benchmarkWalks(_ kernels: KernelSet) throws -> [WalkRow] {
        let caches = CacheSizes.current
        func table(_ walk: GEMMBlocking.Walk) -> KernelFunctions {
            KernelSet.make(kernels.variant, blocking: GEMMBlocking(l1Bytes: caches.l1Data, l2Bytes: caches.l2, walk: walk)).functions
        }
        let direct = table(.direct), blocked = table(.blocked)
        let shapes: [(String, Int, Int, Int, Int?)] = [
            ("dW rows of a 1024-wide input", 64, 512, 1024, 1024), ("dW of a 1024-wide input", 1024, 512, 1024, 1024),
            ("dW of a 512-wide input", 512, 512, 512, 512), ("heavy xᵀ·da1 (784 wide)", 784, 1000, 1024, 784),
            ("dW rows of x (784 wide)", 128, 1000, 1024, 784), ("row-major 1000x784x1024", 1000, 784, 1024, nil),
            ("row-major 512x1024x1024", 512, 1024, 1024, nil), ("lecture xᵀ·da1 (784 wide)", 784, 100, 100, 784),
            ("dW of a 256-wide input, 64 out", 256, 512, 64, 256), ("dW rows of x, 256 out", 128, 1000, 256, 784),
        ]
        print("")
        print("the GEMM's two walks side by side (\(3 * repeats) alternating rounds; same bits):")
        print("product                          m x k x n (stride)          direct GFLOP/s  blocked GFLOP/s  automatic takes")
        var rows: [WalkRow] = []
        for (name, m, k, n, stride) in shapes {
            let a = FloatBuffer(count: k * (stride ?? m)), b = FloatBuffer(count: k * n)
            for i in 0..<a.count { a.pointer[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
            for i in 0..<k * n { b.pointer[i] = Float((i * 104_729) % 1000) / 1000 - 0.5 }
            let packed = FloatBuffer(count: GEMM.packedCount(k: k, n: n)), scratch = FloatBuffer(count: GEMM.packAScratchCount)
            GEMM.packB(MatrixView(rowMajor: b.pointer, rows: k, columns: n), into: packed.pointer, kRange: 0..<k)
            let view = stride.map { MatrixView(rowMajor: a.pointer, rows: k, columns: $0).transposed.rows(0..<m) }
                       ?? MatrixView(rowMajor: a.pointer, rows: m, columns: k)
            let c1 = FloatBuffer(count: m * n), c2 = FloatBuffer(count: m * n)
            func run(_ f: KernelFunctions, _ c: FloatBuffer) { f.multiply(view, packed.pointer, MutableMatrixView(c.pointer, rows: m, columns: n), false, scratch.pointer) }
            run(direct, c1)
            run(blocked, c2)
            guard (0..<m * n).allSatisfy({ c1.pointer[$0].bitPattern == c2.pointer[$0].bitPattern }) else {
                throw ValidationError("the GEMM's walks differ on \(name)")
            }
            let chosen = GEMM.prefersBlockedWalk(view, columns: n) ? "blocked" : "direct"
            let flops = 2.0 * Double(m * k * n)
            var times: [[Double]] = [[], []]
            for _ in 0..<3 * repeats {
                times[0].append(seconds { run(direct, c1) })
                times[1].append(seconds { run(blocked, c2) })
            }
            let gflops = times.map { flops / Stats($0).median / 1e9 }
            print("\(name.padding(toLength: 31, withPad: " ", startingAt: 0))  \("\(m) x \(k) x \(n) (\(stride.map(String.init) ?? "row-major"))".padding(toLength: 26, withPad: " ", startingAt: 0))  \(fixed(gflops[0]).leftPad(14))  \(fixed(gflops[1]).leftPad(15))  \(chosen)")
            rows.append(WalkRow(name: name, m: m, k: k, n: n, stride: stride, chosen: chosen, gflops_direct: gflops[0], gflops_blocked: gflops[1]))
        }
        return rows
    }

    /// The sparse layer-one kernels on a batch of 100 MNIST images (the default run's), each
    /// checked bit for bit against the dense GEMM first. Rates count the multiply-adds done
    /// (2 FLOP per non-zero pixel and hidden unit); "dense-equivalent" divides the dense product's
    /// FLOPs (2·100·784·100) by the same time.
    func benchmarkSparse(_ kernels: KernelSet, peak: Double) throws {
        let train = try MNIST.loadEmbedded().train
        let sparse = SparseImages(train)
        let x = sparse.rows
        let (b, k, h) = (100, 784, 100)
        let images = (0..<b).map { ($0 * 7919 + 13) % train.count }
        let entries = images.map { x.entries($0).count }.reduce(0, +)
        let w = FloatBuffer(count: k * h), d = FloatBuffer(count: b * h), z = FloatBuffer(count: b * h)
        for i in 0..<k * h { w.pointer[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
        for i in 0..<b * h { d.pointer[i] = Float((i * 104_729) % 1000) / 1000 - 0.5 }
        let stride = (h + 7) / 8 * 8
        let acc = FloatBuffer(count: SparseRows.blockWidth * stride)
        let dW = FloatBuffer(count: k * h)
        let f = kernels.functions
        let layer = SparseLayerOne(kernels: kernels, x: x, images: images, inputs: k)
        func forward() { layer.forward(columns: 0..<k, w: w.pointer, rowStride: h, width: h, z: z.pointer) }
        func backward() { layer.scatter(columns: 0..<k, d: d.pointer, rowStride: h, width: h, acc: acc.pointer, accStride: stride, dW: dW.pointer) }
        // Bit-for-bit against the dense GEMM on the same batch.
        let dense = FloatBuffer(count: b * k)
        for (r, image) in images.enumerated() { train.copyNormalized(image, to: dense.pointer + r * k) }
        let scratch = FloatBuffer(count: GEMM.packAScratchCount)
        let packedW = FloatBuffer(count: GEMM.packedCount(k: k, n: h)), packedD = FloatBuffer(count: GEMM.packedCount(k: b, n: h))
        GEMM.packB(MatrixView(rowMajor: w.pointer, rows: k, columns: h), into: packedW.pointer, kRange: 0..<k)
        GEMM.packB(MatrixView(rowMajor: d.pointer, rows: b, columns: h), into: packedD.pointer, kRange: 0..<b)
        let zDense = FloatBuffer(count: b * h), dWDense = FloatBuffer(count: k * h)
        f.multiply(MatrixView(rowMajor: dense.pointer, rows: b, columns: k), packedW.pointer, MutableMatrixView(zDense.pointer, rows: b, columns: h), false, scratch.pointer)
        f.multiply(MatrixView(rowMajor: dense.pointer, rows: b, columns: k).transposed, packedD.pointer, MutableMatrixView(dWDense.pointer, rows: k, columns: h), false, scratch.pointer)
        forward()
        backward()
        guard (0..<b * h).allSatisfy({ z.pointer[$0].bitPattern == zDense.pointer[$0].bitPattern }),
              (0..<k * h).allSatisfy({ dW.pointer[$0].bitPattern == dWDense.pointer[$0].bitPattern }) else {
            throw ValidationError("the sparse kernels differ from the dense GEMM on the benchmark batch")
        }
        print("")
        print("sparse layer one on 100 MNIST images (\(entries) non-zero pixels, density \(fixed(Double(entries) / Double(b * k), 3))), bitwise equal to the dense GEMM:")
        print("product                       µs per batch   ns per pixel   GFLOP/s done  % of peak   dense-equivalent GFLOP/s")
        for (name, body) in [("x·W1   sparse rows", forward), ("xᵀ·da1 scattered", backward)] as [(String, () -> Void)] {
            let r = Stats(rates(repeats: repeats, work: 1) { body() })
            let seconds = 1 / r.median
            let done = 2.0 * Double(entries * h) / seconds / 1e9
            print("\(name.padding(toLength: 28, withPad: " ", startingAt: 0))  \(fixed(seconds * 1e6).leftPad(12))  \(fixed(seconds * 1e9 / Double(entries), 2).leftPad(13))  \(fixed(done).leftPad(12))  \(fixed(100 * done / peak).leftPad(8))%  \(fixed(2.0 * Double(b * k * h) / seconds / 1e9).leftPad(24))")
        }
        try benchmarkTwoWorkerShares(layer, w: w, d: d)
    }

    /// One worker's share of layer one (x·W1 and the dW1 scatter) under the two ways of
    /// splitting it over 2 workers, timed on one core alone (docs/architecture.md, "Designs
    /// measured and not taken"):
    /// - input k-blocks (the engine): the worker of the heavier block, pixels 392..<784 (79 of
    ///   an image's 150 non-zero pixels), for all 100 hidden units;
    /// - hidden units: the worker of 52 units (7 SIMD8 vectors, the wider of 48 + 52), for every
    ///   pixel, from a 784 x 52 W1 of its own (rows padded to 56 floats).
    /// The hidden split moves about 15 KB between the cores per iteration instead of about
    /// 125 KB, so it could only win where the k-split's transfers cost more than the difference
    /// between these two shares.
    func benchmarkTwoWorkerShares(_ layer: SparseLayerOne, w: FloatBuffer, d: FloatBuffer) throws {
        let (b, k, h) = (layer.images.count, layer.inputs, 100)
        let heavy = GEMM.kBlock(1, of: k)
        let units = 52, unitStride = 56
        let z = FloatBuffer(count: b * h), dW = FloatBuffer(count: k * h)
        let wUnits = FloatBuffer(count: k * unitStride), dUnits = FloatBuffer(count: b * unitStride)
        let zUnits = FloatBuffer(count: b * unitStride), dWUnits = FloatBuffer(count: k * unitStride)
        for p in 0..<k { (wUnits.pointer + p * unitStride).update(from: w.pointer + p * h + h - units, count: units) }
        for r in 0..<b { (dUnits.pointer + r * unitStride).update(from: d.pointer + r * h + h - units, count: units) }
        let acc = FloatBuffer(count: SparseRows.blockWidth * unitStride * 2)
        let stride = (h + 7) / 8 * 8

        func layerOne(columns: Range<Int>, w: UnsafePointer<Float>, d: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>,
                      dW: UnsafeMutablePointer<Float>, width: Int, rowStride: Int, accStride: Int) {
            layer.forward(columns: columns, w: w, rowStride: rowStride, width: width, z: z)
            layer.scatter(columns: columns, d: d, rowStride: rowStride, width: width, acc: acc.pointer, accStride: accStride, dW: dW)
        }
        let shares: [(String, () -> Void)] = [
            ("whole layer (1 worker)", { layerOne(columns: 0..<k, w: w.pointer, d: d.pointer, z: z.pointer, dW: dW.pointer, width: h, rowStride: h, accStride: stride) }),
            ("k-split: pixels 392..<784", { layerOne(columns: heavy, w: w.pointer, d: d.pointer, z: z.pointer, dW: dW.pointer, width: h, rowStride: h, accStride: stride) }),
            ("hidden split: 52 units", { layerOne(columns: 0..<k, w: wUnits.pointer, d: dUnits.pointer, z: zUnits.pointer, dW: dWUnits.pointer, width: units, rowStride: unitStride, accStride: unitStride) }),
        ]
        // Rounds alternate the three, so a change in the shared machine's speed reaches each alike.
        var times = [[Double]](repeating: [], count: shares.count)
        for (_, body) in shares { body() }
        for _ in 0..<repeats * 3 {
            for (i, (_, body)) in shares.enumerated() { times[i].append(seconds { for _ in 0..<20 { body() } } / 20) }
        }
        let medians = times.map { Stats($0).median }
        // The hidden split's share computes the same products as the full layer restricted to its
        // columns: check every one of its outputs bit for bit against the full layer's.
        shares[0].1()
        let zFull = (0..<b * h).map { z.pointer[$0] }, dWFull = (0..<k * h).map { dW.pointer[$0] }
        shares[2].1()
        for r in 0..<b { for j in 0..<units where zUnits.pointer[r * unitStride + j].bitPattern != zFull[r * h + h - units + j].bitPattern {
            throw ValidationError("the hidden split's x·W1 differs from the whole layer's at row \(r), unit \(h - units + j)")
        } }
        for p in 0..<k { for j in 0..<units where dWUnits.pointer[p * unitStride + j].bitPattern != dWFull[p * h + h - units + j].bitPattern {
            throw ValidationError("the hidden split's dW1 differs from the whole layer's at pixel \(p), unit \(h - units + j)")
        } }
        print("")
        print("one worker's share of layer one (x·W1 + dW1 scatter) under each 2-worker split, alone on one core (\(repeats * 3) alternating rounds):")
        print("share                          µs per batch   / whole layer   / k-split share")
        for (i, (name, _)) in shares.enumerated() {
            print("\(name.padding(toLength: 29, withPad: " ", startingAt: 0))  \(fixed(medians[i] * 1e6).leftPad(12))  \(fixed(medians[i] / medians[0], 2).leftPad(14))  \(fixed(medians[i] / medians[1], 2).leftPad(15))")
        }
    }

    /// One product set up for timing (its result checked against the Float64 reference where
    /// that is quick).
    func gemmProbe(_ kernels: KernelSet, m: Int, k: Int, n: Int, transposedA: Bool) throws -> RateProbe {
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
        for i in 0..<m * k { a.pointer[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
        for i in 0..<k * n { b.pointer[i] = Float((i * 104_729) % 1000) / 1000 - 0.5 }
        let packed = FloatBuffer(count: GEMM.packedCount(k: k, n: n)), scratch = FloatBuffer(count: GEMM.packAScratchCount)
        GEMM.packB(MatrixView(rowMajor: b.pointer, rows: k, columns: n), into: packed.pointer, kRange: 0..<k)
        // a is stored (m, k) or, for the transposed uses, (k, m) and read through a transposed view.
        let view = transposedA ? MatrixView(rowMajor: a.pointer, rows: k, columns: m).transposed : MatrixView(rowMajor: a.pointer, rows: m, columns: k)
        let out = MutableMatrixView(c.pointer, rows: m, columns: n)
        kernels.functions.multiply(view, packed.pointer, out, false, scratch.pointer)
        if m * k * n <= 10_000_000 {
            let aRowMajor = (0..<m * k).map { Double(view[$0 / k, $0 % k]) }
            let exact = Reference.matmul(aRowMajor, (0..<k * n).map { Double(b.pointer[$0]) }, m: m, k: k, n: n)
            let bound = Double(k + 2) * 0x1p-24 * Double(k) * 0.25 * 1.01
            for i in 0..<m * n where abs(Double(c.pointer[i]) - exact[i]) > bound {
                throw ValidationError("GEMM \(m)x\(k)x\(n) gives a wrong result at \(i): \(c.pointer[i]) vs \(exact[i])")
            }
        }
        return RateProbe(work: 2.0 * Double(m * k * n) / 1e9) {
            withExtendedLifetime((a, b, c, packed, scratch)) {
                kernels.functions.multiply(view, packed.pointer, out, false, scratch.pointer)
            }
        }
    }
}

/// Layer one's two sparse products on a fixed batch, over any range of input pixels and any
/// number of hidden units, as the engine runs them (docs/kernels.md): x·W1 one multiply-add chain
/// per k-block, continued into the same output row; the dW1 scatter per 56-pixel block into an
/// accumulator, then copied to its rows.
struct SparseLayerOne {
    let kernels: KernelSet
    let x: SparseRows
    let images: [Int]
    let inputs: Int

    /// z (row stride `rowStride`) = x[:, columns] · w[columns, 0..<width].
    func forward(columns: Range<Int>, w: UnsafePointer<Float>, rowStride: Int, width: Int, z: UnsafeMutablePointer<Float>) {
        for (r, image) in images.enumerated() {
            for block in 0..<GEMM.kBlockCount(inputs) {
                let kRange = GEMM.kBlock(block, of: inputs).clamped(to: columns)
                guard !kRange.isEmpty else { continue }
                kernels.functions.sparseRowTimesMatrix(x, x.entries(image, columns: kRange), w, rowStride, width, z + r * rowStride,
                                                       kRange.lowerBound > columns.lowerBound)
            }
        }
    }

    /// dW[columns, 0..<width] = x[:, columns]ᵀ · d, through `acc` (56 rows of `accStride`).
    func scatter(columns: Range<Int>, d: UnsafePointer<Float>, rowStride: Int, width: Int, acc: UnsafeMutablePointer<Float>,
                 accStride: Int, dW: UnsafeMutablePointer<Float>) {
        for k0 in Swift.stride(from: columns.lowerBound, to: columns.upperBound, by: SparseRows.blockWidth) {
            let k1 = min(k0 + SparseRows.blockWidth, columns.upperBound)
            acc.update(repeating: 0, count: (k1 - k0) * accStride)
            for (r, image) in images.enumerated() {
                kernels.functions.sparseScatterRow(x, x.entries(image, columns: k0..<k1), k0, d + r * rowStride, width, acc, accStride)
            }
            for kk in k0..<k1 { (dW + kk * rowStride).update(from: acc + (kk - k0) * accStride, count: width) }
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
