import Dataset
import Kernels
import Model

/// How `--input auto` decides where the data's density alone does not: by timing both encodings
/// on this machine, with this network and kernel variant.
///
/// Below `sparseUpTo` the sparse kernels win by a margin no machine has reversed (MNIST, density
/// 0.19, trains about 2x faster sparse), above `denseFrom` the dense GEMM does; in between the
/// break-even moves with the CPU (Fashion-MNIST, density 0.50, has trained faster dense on some
/// hosts of this machine kind and faster sparse on others) and with the network's first width. There, one batch's gradient through the engine's row and parameter phases
/// (every layer's kernels as a run uses them; only layer one differs between the two) is timed on
/// up to `calibrationRows` images of the set, each encoding `repeats` times in alternation, and the
/// encoding with the lower best time is chosen. The choice changes no bit of the result (the sparse
/// kernels run the dense GEMM's chains minus their zero terms), only the speed.
public enum InputCalibration {
    /// Density up to which `auto` reads sparse without timing.
    public static let sparseUpTo = 0.3
    /// Density from which `auto` reads dense without timing.
    public static let denseFrom = 0.7
    /// Images in the timed batch.
    public static let calibrationRows = 100
    /// Timings per encoding, alternating; the best of each is compared.
    public static let repeats = 5

    /// The faster encoding for `images` (which `SparseImages.supports`) under `spec`, timed.
    public static func measure(_ images: LabeledImages, spec: NetworkSpec, kernels: KernelFunctions) -> InputEncoding {
        let rows = min(calibrationRows, images.count)
        // Evenly spaced images, so a set sorted by class still gives a typical batch.
        let chosen = (0..<rows).map { $0 * images.count / rows }
        let n = images.pixelsPerImage
        var pixels: [UInt8] = []
        pixels.reserveCapacity(rows * n)
        for image in chosen { pixels += images.pixels[image * n..<(image + 1) * n] }
        let sample = LabeledImages(count: rows, rows: images.rows, columns: images.columns, pixels: pixels,
                                   labels: chosen.map { images.labels[$0] })
        let sparseImages = SparseImages(sample)
        return withExtendedLifetime(sparseImages) {  // `rows` points into it
            time(sample, sparseImages.rows, spec: spec, kernels: kernels)
        }
    }

    static func time(_ sample: LabeledImages, _ sparseRows: SparseRows, spec: NetworkSpec, kernels: KernelFunctions) -> InputEncoding {
        let rows = sample.count, n = sample.pixelsPerImage
        let net = Network(spec: spec, seed: 1)
        let backprop = Backprop(kernels: kernels, layout: net.layout)
        let dense = BatchBuffers(layout: net.layout, batchSize: rows)
        let sparse = BatchBuffers(layout: net.layout, batchSize: rows, sparseInput: true)
        for r in 0..<rows {
            dense.setRow(r, image: r, label: Int32(sample.labels[r]))
            sparse.setRow(r, image: r, label: Int32(sample.labels[r]), sparse: sparseRows)
        }
        let denseScratch = WorkerScratch(layout: net.layout), sparseScratch = WorkerScratch(layout: net.layout, batchSize: rows)
        // The engine keeps the packed weights current through its updates rather than rebuilding
        // them per batch: pack once, then time the two phases. The dense side includes normalizing
        // the pixels into x, which the loader does for every batch.
        backprop.packAll(net, dense)
        backprop.packAll(net, sparse, input: .sparse(sparseRows))
        func gradient(_ batch: BatchBuffers, _ scratch: WorkerScratch, _ input: BatchInput) {
            backprop.rowPhase(net, batch, scratch, rows: 0..<rows, input: input)
            for slice in ParameterSlice.all(spec) { backprop.parameterPhase(batch, scratch, slice: slice, input: input) }
        }
        func denseGradient() {
            for r in 0..<rows { sample.copyNormalized(r, to: dense.x.pointer + r * n) }
            gradient(dense, denseScratch, .dense)
        }
        func sparseGradient() { gradient(sparse, sparseScratch, .sparse(sparseRows)) }
        var best = (dense: Double.infinity, sparse: Double.infinity)
        for _ in 0..<repeats {
            best.dense = min(best.dense, seconds(denseGradient))
            best.sparse = min(best.sparse, seconds(sparseGradient))
        }
        return best.sparse < best.dense ? .sparse : .dense
    }

    static func seconds(_ body: () -> Void) -> Double {
        let start = MonotonicInstant.now
        body()
        return start.elapsed
    }
}
