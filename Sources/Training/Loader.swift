import CSupport
import Dataset
import Kernels
import Model
import Parallel

/// The sharded loader: the training images stay compact in one copy per NUMA node in use, and
/// each worker assembles its own rows of every batch from its node's copy.
///
/// - Dense input: the copy is the pixel bytes; a worker normalizes its rows into `BatchBuffers.x`.
/// - Sparse input: the copy is the images' compressed sparse rows (`SparseImages`, built on the
///   node); a worker only records which image fills each row, and layer 1 reads the image's
///   non-zero pixels in place.
///
/// Why one copy per node rather than a split: batches are drawn from the whole set, so with a split
/// (1 − 1/nodes) of every worker's reads would cross nodes; a full copy costs 47 MB (dense) or
/// 30 MB (sparse MNIST) per node and makes every read local. With one node there is a single copy.
public final class ShardedLoader: @unchecked Sendable {
    public let images: LabeledImages
    public let sampler: BatchSampler
    public let encoding: InputEncoding
    /// Node id -> that node's copy of the pixels (dense input).
    let copies: [Int: NodeLocalBytes]
    /// Node id -> that node's sparse rows (sparse input).
    let sparseCopies: [Int: SparseImages]

    let kernels: KernelFunctions

    public init(images: LabeledImages, sampler: BatchSampler, nodes: [Int], kernels: KernelFunctions,
                encoding: InputEncoding = .dense) {
        self.images = images
        self.sampler = sampler
        self.kernels = kernels
        self.encoding = encoding
        var copies: [Int: NodeLocalBytes] = [:]
        var sparseCopies: [Int: SparseImages] = [:]
        let replicate = nodes.count > 1
        for node in nodes {
            switch encoding {
            case .dense: copies[node] = NodeLocalBytes(images.pixels, node: node, replicate: replicate)
            case .sparse: sparseCopies[node] = NodeMemory.preferring(node: node, when: replicate) { SparseImages(images) }
            }
        }
        self.copies = copies
        self.sparseCopies = sparseCopies
    }

    /// The relative work of layer 1 for each input k-block (`GEMM.kBlock`): the mean non-zero
    /// pixels of the block for a sparse input, the block's width for a dense one.
    public func layerOneWeights(inputs: Int) -> [Double] {
        (0..<GEMM.kBlockCount(inputs)).map { b in
            let columns = GEMM.kBlock(b, of: inputs)
            switch encoding {
            case .dense: return Double(columns.count)
            case .sparse: return sparseCopies.values.first!.meanNonZeros(columns: columns)
            }
        }
    }

    /// What layer 1 of a worker on `node` reads.
    public func input(node: Int) -> BatchInput {
        switch encoding {
        case .dense: return .dense
        case .sparse: return .sparse((sparseCopies[node] ?? sparseCopies.values.first!).rows)
        }
    }

    /// Ahead of time, for `rows` of `iteration` (the next one, while the current iteration's
    /// parameter phase runs): for a sparse input, the sample indices and labels go to the batch's
    /// staged buffers (`BatchBuffers.swapStaged` makes them current) and prefetch hints bring each
    /// image's row offsets, block table and entries towards the caches; for a dense input, only the
    /// prefetch hints for the image bytes (the row phase assembles them).
    public func stage(iteration: Int, rows: Range<Int>, into batch: BatchBuffers, node: Int) {
        switch encoding {
        case .dense:
            let n = images.pixelsPerImage
            (copies[node] ?? copies.values.first!).withBytes { pixels in
                for row in rows {
                    let image = pixels + sampler.index(iteration: iteration, row: row) * n
                    for offset in stride(from: 0, to: n, by: 64) { csupport_prefetch(image + offset) }
                }
            }
        case .sparse:
            let x = (sparseCopies[node] ?? sparseCopies.values.first!).rows
            images.labels.withUnsafeBufferPointer { labels in
                for row in rows {
                    let image = sampler.index(iteration: iteration, row: row)
                    batch.stagedSampleIndices[row] = image
                    batch.stagedLabels[row] = Int32(labels[image])
                    csupport_prefetch(x.blockStart + image * (x.blocksPerRow + 1))
                    let entries = x.entries(image)
                    for offset in stride(from: entries.lowerBound, to: entries.upperBound, by: 32) {
                        csupport_prefetch(x.indices + offset)
                    }
                    for offset in stride(from: entries.lowerBound, to: entries.upperBound, by: 64) {
                        csupport_prefetch(x.values + offset)
                    }
                }
            }
        }
    }

    /// Fills `rows` of `batch.labels` and `batch.sampleIndices` (and, for dense input, `batch.x`)
    /// for `iteration`, reading from `node`'s copy. The rows' images lie at random places in the
    /// set, so their cache lines are requested all at once (prefetch) before any is used: the
    /// misses overlap instead of queueing.
    public func assemble(iteration: Int, rows: Range<Int>, into batch: BatchBuffers, node: Int) {
        images.labels.withUnsafeBufferPointer { labels in
            for row in rows {
                let index = sampler.index(iteration: iteration, row: row)
                batch.labels[row] = Int32(labels[index])
                batch.sampleIndices[row] = index
            }
        }
        switch encoding {
        case .dense:
            let n = images.pixelsPerImage
            let copy = copies[node] ?? copies.values.first!
            copy.withBytes { pixels in
                for row in rows {
                    let image = pixels + batch.sampleIndices[row] * n
                    for offset in stride(from: 0, to: n, by: 64) { csupport_prefetch(image + offset) }
                }
                for row in rows {
                    kernels.normalizePixels(pixels + batch.sampleIndices[row] * n, n, batch.x.pointer + row * n)
                }
            }
        case .sparse:
            let x = (sparseCopies[node] ?? sparseCopies.values.first!).rows
            for row in rows {
                let entries = x.entries(batch.sampleIndices[row])
                for offset in stride(from: entries.lowerBound, to: entries.upperBound, by: 32) {
                    csupport_prefetch(x.indices + offset)
                }
                for offset in stride(from: entries.lowerBound, to: entries.upperBound, by: 64) {
                    csupport_prefetch(x.values + offset)
                }
            }
        }
    }
}
