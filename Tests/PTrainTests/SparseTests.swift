import Dataset
import KernelCore
import Kernels
import Model
import Parallel
import TestSupport
import Training
import XCTest

/// The sparse input path against the dense one: same bits, by construction (docs/kernels.md).
final class SparseTests: XCTestCase {
    static let mnist = try! MNIST.loadEmbedded()
    static let mnistSparse = SparseImages(mnist.train)

    /// Byte images in which each pixel is non-zero with probability `density`.
    func randomImages(_ random: inout TestRandom, count: Int, pixels: Int, density: Double) -> LabeledImages {
        var bytes = [UInt8](repeating: 0, count: count * pixels)
        for i in bytes.indices where Double(random.symmetric() * 0.5 + 0.5) < density {
            bytes[i] = UInt8(1 + random.int(below: 255))
        }
        return LabeledImages(count: count, rows: 1, columns: pixels, pixels: bytes, labels: [UInt8](repeating: 0, count: count))
    }

    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    func randomBuffer(_ random: inout TestRandom, count: Int) -> FloatBuffer {
        let b = FloatBuffer(count: count)
        for i in 0..<count { b.pointer[i] = random.symmetric() }
        return b
    }

    /// The images normalized as the dense path sees them.
    func normalized(_ images: LabeledImages) -> FloatBuffer {
        let x = FloatBuffer(count: images.pixels.count)
        images.pixels.withUnsafeBufferPointer { normalizePixels($0.baseAddress!, count: $0.count, into: x.pointer) }
        return x
    }

    /// A row-major (rows, columns) matrix packed as a GEMM B-operand.
    func packed(_ b: FloatBuffer, rows: Int, columns: Int) -> FloatBuffer {
        let p = FloatBuffer(count: GEMM.packedCount(k: rows, n: columns))
        GEMM.packB(MatrixView(rowMajor: b.pointer, rows: rows, columns: columns), into: p.pointer, kRange: 0..<rows)
        return p
    }

    func testSparseImagesRoundTripAndBlockTable() {
        var random = TestRandom(seed: 3)
        for pixels in [1, 7, 55, 56, 57, 100, 784, 1100] {
            for density in [0.0, 0.2, 1.0] {
                let images = randomImages(&random, count: 9, pixels: pixels, density: density)
                let sparse = SparseImages(images)
                let rows = sparse.rows
                XCTAssertEqual(sparse.nonZeroCount, images.pixels.filter { $0 != 0 }.count)
                XCTAssertEqual(SparseImages.density(images, stride: 1), Double(sparse.nonZeroCount) / Double(9 * pixels), accuracy: 1e-12)
                for image in 0..<9 {
                    var dense = [UInt8](repeating: 0, count: pixels)
                    var previous = -1
                    for p in rows.entries(image) {
                        let column = Int(rows.indices[p])
                        XCTAssertGreaterThan(column, previous, "columns increase")
                        previous = column
                        dense[column] = rows.values[p]
                        XCTAssertEqual(rows.table[Int(rows.values[p])], Float(rows.values[p]) / 255)
                    }
                    XCTAssertEqual(dense, Array(images.pixels[image * pixels..<(image + 1) * pixels]), "pixels \(pixels) image \(image)")
                    let offsets = UnsafeMutablePointer<Int>.allocate(capacity: rows.blocksPerRow + 1)
                    defer { offsets.deallocate() }
                    rows.blockOffsets(image, into: offsets)
                    for column in 0...pixels {
                        let expected = rows.entries(image).first { Int(rows.indices[$0]) >= column } ?? rows.entries(image).upperBound
                        XCTAssertEqual(rows.position(image, firstColumnAtLeast: column), expected, "pixels \(pixels) column \(column)")
                        let end = min(pixels, column + column % 61)
                        XCTAssertEqual(rows.entries(offsets: offsets, columns: column..<end), rows.entries(image, columns: column..<end))
                    }
                }
            }
        }
    }

    /// x·W from sparse rows, chained per GEMM k-block as `Backprop` does, equals the dense GEMM
    /// bit for bit, for every kernel variant, on awkward shapes (tiles of 1 to 13 vectors, several
    /// tiles, one and two k-blocks).
    func testSparseRowTimesMatrixEqualsDenseGEMMBitwise() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 5)
            for pixels in [1, 3, 17, 100, 784, 1100] {
                for columns in [1, 3, 7, 17, 100, 104, 105, 233] {
                    let m = 7
                    let images = randomImages(&random, count: m, pixels: pixels, density: 0.3)
                    let sparse = SparseImages(images)
                    let w = randomBuffer(&random, count: pixels * columns)
                    let x = normalized(images)
                    let packedW = packed(w, rows: pixels, columns: columns)
                    let dense = FloatBuffer(count: m * columns), fromSparse = FloatBuffer(count: m * columns)
                    let scratch = FloatBuffer(count: GEMM.packAScratchCount)
                    kernels.functions.multiply(MatrixView(rowMajor: x.pointer, rows: m, columns: pixels), packedW.pointer,
                                               MutableMatrixView(dense.pointer, rows: m, columns: columns), false, scratch.pointer)
                    for r in 0..<m {
                        for block in 0..<GEMM.kBlockCount(pixels) {
                            kernels.functions.sparseRowTimesMatrix(sparse.rows, sparse.rows.entries(r, columns: GEMM.kBlock(block, of: pixels)),
                                                                   w.pointer, columns, columns, fromSparse.pointer + r * columns, block > 0)
                        }
                    }
                    XCTAssertEqual(bits(Array(fromSparse.buffer)), bits(Array(dense.buffer)), "\(kernels.variant) \(pixels)x\(columns)")
                }
            }
        }
    }

    /// xᵀ·d by scattering sparse rows equals the dense GEMM on xᵀ bit for bit.
    func testSparseScatterEqualsDenseGEMMBitwise() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 6)
            for pixels in [1, 17, 100, 784] {
                for columns in [1, 7, 17, 100, 233] {
                    for batch in [1, 7, 100] {
                        let images = randomImages(&random, count: batch, pixels: pixels, density: 0.25)
                        let sparse = SparseImages(images)
                        let d = randomBuffer(&random, count: batch * columns)
                        let x = normalized(images)
                        let packedD = packed(d, rows: batch, columns: columns)
                        let dense = FloatBuffer(count: pixels * columns)
                        let scratch = FloatBuffer(count: GEMM.packAScratchCount)
                        kernels.functions.multiply(MatrixView(rowMajor: x.pointer, rows: batch, columns: pixels).transposed, packedD.pointer,
                                                   MutableMatrixView(dense.pointer, rows: pixels, columns: columns), false, scratch.pointer)
                        let stride = (columns + 7) / 8 * 8
                        let acc = FloatBuffer(count: pixels * stride)
                        for r in 0..<batch {
                            kernels.functions.sparseScatterRow(sparse.rows, sparse.rows.entries(r), 0, d.pointer + r * columns, columns,
                                                               acc.pointer, stride)
                        }
                        let scattered = (0..<pixels * columns).map { acc.pointer[($0 / columns) * stride + $0 % columns] }
                        XCTAssertEqual(bits(scattered), bits(Array(dense.buffer)), "\(kernels.variant) \(pixels)x\(columns), batch \(batch)")
                    }
                }
            }
        }
    }

    /// The whole gradient from sparse MNIST rows equals the dense one bit for bit, with one GEMM
    /// k-block over the batch (100 rows) and with two (600 rows), for the lecture's net and for
    /// deeper nets of each activation (only layer 1 reads the input).
    func testSparseGradientEqualsDenseBitwise() {
        let train = Self.mnist.train
        let specs = [NetworkSpec(), NetworkSpec(hidden: [40, 24], activation: .relu, initialization: .he),
                     NetworkSpec(hidden: [30, 20, 10], activation: .tanh, initialization: .glorot)]
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 8)
            for (batchSize, spec) in [100, 600].flatMap({ b in specs.map { (b, $0) } }) {
                let net = Network(spec: spec, seed: 8)
                let dense = BatchBuffers(layout: net.layout, batchSize: batchSize)
                let sparse = BatchBuffers(layout: net.layout, batchSize: batchSize, sparseInput: true)
                for r in 0..<batchSize {
                    let image = random.int(below: train.count)
                    train.copyNormalized(image, to: dense.x.pointer + r * 784)
                    dense.setRow(r, image: image, label: Int32(train.labels[image]))
                    sparse.setRow(r, image: image, label: Int32(train.labels[image]), sparse: Self.mnistSparse.rows)
                }
                let backprop = Backprop(kernels: kernels.functions, layout: net.layout)
                backprop.gradient(net, dense, WorkerScratch(layout: net.layout))
                backprop.gradient(net, sparse, WorkerScratch(layout: net.layout, batchSize: batchSize), input: .sparse(Self.mnistSparse.rows))
                XCTAssertEqual(bits(Array(sparse.gradients.buffer)), bits(Array(dense.gradients.buffer)), "\(kernels.variant) batch \(batchSize) \(spec.description)")
                XCTAssertEqual(sparse.meanLoss.bitPattern, dense.meanLoss.bitPattern)
            }
        }
    }

    /// Training reads the same bits through either input, for any worker count (parameterStep
    /// fuses the W1 update in the sparse path; this checks it against the dense path's two steps).
    func testTrainingWithSparseInputGivesTheDenseBits() throws {
        for kernels in supportedKernelSets {
            var digests = Set<String>()
            for (input, workers) in [(InputChoice.dense, 1), (.sparse, 1), (.sparse, 3), (.auto, 2)] {
                var c = TrainingConfiguration()
                c.iterations = 60
                c.workers = workers
                c.input = input
                let net = Network(spec: c.spec(input: 784, classes: 10), seed: 1)
                let trainer = Trainer(configuration: c, net: net, train: Self.mnist.train, kernels: kernels, topology: Topology.discover())
                XCTAssertEqual(trainer.input, input == .dense ? .dense : .sparse, "MNIST's density 0.19 selects sparse under auto")
                XCTAssertEqual(trainer.run().stop, .completed)
                digests.insert(net.parametersSHA256)
            }
            XCTAssertEqual(digests.count, 1, "\(kernels.variant): \(digests)")
        }
    }

    /// 1,100 inputs make three k-blocks (0..<366, 366..<733, 733..<1100) whose edges are not
    /// multiples of the 56-row W1 items, so some items update rows of two blocks, and a block's
    /// forward items must wait for those too: any worker count, and the dense input, end with the
    /// same bits.
    func testKBlocksThatSplitAParameterItemKeepTheBits() throws {
        var random = TestRandom(seed: 11)
        let images = randomImages(&random, count: 300, pixels: 1100, density: 0.2)
        XCTAssertEqual(GEMM.kBlockCount(1100), 3)
        XCTAssertNotEqual(GEMM.kBlock(1, of: 1100).lowerBound % SparseRows.blockWidth, 0)
        let kernels = try KernelSet.best()
        var digests = Set<String>()
        for (input, workers) in [(InputChoice.dense, 1), (.sparse, 1), (.sparse, 2), (.sparse, 3), (.sparse, 5)] {
            var c = TrainingConfiguration()
            c.iterations = 40
            c.batchSize = 50
            c.hidden = [24]
            c.workers = workers
            c.input = input
            let net = Network(spec: c.spec(input: 1100, classes: 10), seed: 3)
            let trainer = Trainer(configuration: c, net: net, train: images, kernels: kernels, topology: Topology.discover())
            XCTAssertEqual(trainer.run().stop, .completed)
            digests.insert(net.parametersSHA256)
        }
        XCTAssertEqual(digests.count, 1, "\(digests)")
    }

    func testAutoChoosesByDensity() {
        var random = TestRandom(seed: 9)
        let sparse = randomImages(&random, count: 50, pixels: 100, density: 0.1)
        let dense = randomImages(&random, count: 50, pixels: 100, density: 0.9)
        XCTAssertEqual(try InputChoice.auto.resolve(for: sparse).get(), .sparse)
        XCTAssertEqual(try InputChoice.auto.resolve(for: dense).get(), .dense)
        XCTAssertEqual(try InputChoice.sparse.resolve(for: dense).get(), .sparse)
        XCTAssertEqual(try InputChoice.dense.resolve(for: sparse).get(), .dense)
        let huge = LabeledImages(count: 1, rows: 1, columns: 70_000, pixels: [UInt8](repeating: 0, count: 70_000), labels: [0])
        XCTAssertEqual(try InputChoice.auto.resolve(for: huge).get(), .dense)
        // Between `sparseUpTo` and `denseFrom` auto measures both (which one wins is a matter of
        // speed, shown by `ptrain-bench input`, not here): dense without a run to measure.
        let middling = randomImages(&random, count: 200, pixels: 784, density: 0.5)
        XCTAssertEqual(try InputChoice.auto.resolve(for: middling).get(), .dense)
        var config = TrainingConfiguration()
        config.batchSize = 20
        config.workers = 2
        let trial = InputTrial(configuration: config, kernels: supportedKernelSets.first!, topology: Topology.discover())
        XCTAssertNoThrow(try InputChoice.auto.resolve(for: middling, trial: trial).get())
        // A run resumed 10 iterations before its end weighs those 10, which cannot repay a second
        // trial (`repaysTrials`), so it reads dense whatever the trial measured.
        let resumed = InputTrial(configuration: config, kernels: supportedKernelSets.first!, topology: Topology.discover(),
                                 startIteration: config.iterations - 10)
        XCTAssertEqual(resumed.remainingIterations, 10)
        XCTAssertEqual(trial.remainingIterations, config.iterations)
        XCTAssertEqual(try InputChoice.auto.resolve(for: middling, trial: resumed).get(), .dense)
        guard case .failure(let error) = InputChoice.sparse.resolve(for: huge) else { return XCTFail("70,000 pixels cannot be sparse") }
        XCTAssert(error.message.contains("--input dense"), error.message)
    }

    /// The cost model's arithmetic: setup + time per iteration x iterations, the lower wins; a
    /// sparse input whose rows take long to build loses a short run and wins a long one.
    func testAutoCostModelWeighsSetupAgainstIterations() {
        let dense = (setup: 0.01, perIteration: 0.001), sparse = (setup: 0.2, perIteration: 0.0008)
        XCTAssertEqual(InputCalibration.cheaper(dense: dense, sparse: sparse, iterations: 100), .dense)
        XCTAssertEqual(InputCalibration.cheaper(dense: dense, sparse: sparse, iterations: 10_000), .sparse)
        XCTAssertEqual(InputCalibration.cheaper(dense: dense, sparse: dense, iterations: 10), .dense, "a tie reads dense")
        // A first trial of 20 ms: worth three more before a 10,000-iteration run of 0.3 ms per
        // iteration (3 s), not before a 200-iteration one (60 ms).
        XCTAssertTrue(InputCalibration.repaysTrials(firstTrialSeconds: 0.02, perIteration: 0.0003, iterations: 10_000))
        XCTAssertFalse(InputCalibration.repaysTrials(firstTrialSeconds: 0.02, perIteration: 0.0003, iterations: 200))
    }

    /// The trials' images are evenly spaced over the set, so a set sorted by class gives every class.
    func testAutoTrialSampleSpansTheSet() {
        let images = LabeledImages(count: 10_000, rows: 1, columns: 2, pixels: (0..<20_000).map { UInt8($0 / 2 % 256) },
                                   labels: (0..<10_000).map { UInt8($0 / 1_000) })
        let sample = InputCalibration.evenlySpaced(images, count: 2_000)
        XCTAssertEqual(sample.count, 2_000)
        XCTAssertEqual(Set(sample.labels), Set(0..<10))
        XCTAssertEqual(Array(sample.pixels[2..<4]), Array(images.pixels[10..<12]), "image 1 of the sample is image 5 of the set")
        XCTAssertEqual(InputCalibration.evenlySpaced(images, count: 20_000).count, 10_000)
    }
}
