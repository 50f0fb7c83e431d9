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
    /// The training set.
    public let images: LabeledImages
    /// Which images fill each batch.
    public let sampler: BatchSampler
    /// Dense pixels or sparse rows.
    public let encoding: InputEncoding
    /// Node id -> that node's copy of the pixels (dense input).
    let copies: [Int: NodeLocalBytes]
    /// Node id -> that node's sparse rows (sparse input).
    let sparseCopies: [Int: SparseImages]

    let kernels: KernelFunctions

    /// `placesMemory`: whether the nodes are real, so that several get their own copies.
    public init(images: LabeledImages, sampler: BatchSampler, nodes: [Int], placesMemory: Bool = true, kernels: KernelFunctions,
                encoding: InputEncoding = .dense) {
        self.images = images
        self.sampler = sampler
        self.kernels = kernels
        self.encoding = encoding
        var copies: [Int: NodeLocalBytes] = [:]
        var sparseCopies: [Int: SparseImages] = [:]
        let replicate = placesMemory && nodes.count > 1
        for node in nodes {
            switch encoding {
            case .dense: copies[node] = NodeLocalBytes(images.pixels, node: node, replicate: replicate)
            case .sparse: sparseCopies[node] = NodeMemory.preferring(node: node, when: replicate) { SparseImages(images) }
            }
        }
        self.copies = copies
        self.sparseCopies = sparseCopies
    }

    /// `node`'s copy of the pixel bytes (dense input); a node without a copy reads another's.
    func pixels(_ node: Int) -> NodeLocalBytes { copies[node] ?? copies.values.first! }

    /// `node`'s sparse rows (sparse input); a node without a copy reads another's.
    func sparseRows(_ node: Int) -> SparseRows { (sparseCopies[node] ?? sparseCopies.values.first!).rows }

    /// What layer 1 of a worker on `node` reads.
    public func input(node: Int) -> BatchInput {
        switch encoding {
        case .dense: return .dense
        case .sparse: return .sparse(sparseRows(node))
        }
    }

    /// Ahead of time, for `rows` of `iteration`, `ahead` iterations after the current one: for a
    /// sparse input, the sample indices, labels and block offsets go to `batch.rows(ahead:)`
    /// (`BatchBuffers.advance` makes them current) and prefetch hints bring each image's row
    /// offsets and block table, then its entries, towards the caches; for a dense input, only
    /// prefetch hints for the image bytes (the row phase assembles them).
    public func stage(iteration: Int, ahead: Int = 1, rows: Range<Int>, into batch: BatchBuffers, node: Int) {
        switch encoding {
        case .dense:
            let n = images.pixelsPerImage
            pixels(node).withBytes { pixels in
                for row in rows {
                    let image = pixels + sampler.index(iteration: iteration, row: row) * n
                    for offset in stride(from: 0, to: n, by: 64) { csupport_prefetch(image + offset) }
                }
            }
        case .sparse:
            let x = sparseRows(node), target = batch.rows(ahead: ahead)
            images.labels.withUnsafeBufferPointer { labels in
                // Two passes, so the rows' first cache misses (label, row offset) overlap instead
                // of stalling one after the other.
                for row in rows {
                    let image = sampler.index(iteration: iteration, row: row)
                    target.sampleIndices[row] = image
                    csupport_prefetch(labels.baseAddress! + image)
                    csupport_prefetch(x.rowStart + image)
                    csupport_prefetch(x.blockStart + image * (x.blocksPerRow + 1))
                }
                for row in rows {
                    let image = target.sampleIndices[row]
                    batch.setRow(row, image: image, label: Int32(labels[image]), sparse: x, ahead: ahead)
                }
                // Then the images' entries themselves (about 8 lines per MNIST image), which layer 1
                // reads later: they arrive while other work goes on.
                for row in rows {
                    let offsets = target.entryOffsets + row * batch.offsetsPerRow
                    let entries = offsets[0]..<offsets[batch.offsetsPerRow - 1]
                    x.prefetch(entries)
                }
            }
        }
    }

    /// Fills `rows` of `batch.labels`, `batch.sampleIndices` and, for dense input, `batch.x` (or,
    /// for sparse input, `batch.entryOffsets`) for `iteration`, reading from `node`'s copy. The
    /// rows' images lie at random places in the set, so their cache lines are requested all at
    /// once (prefetch) before any is used: the misses overlap instead of queueing.
    public func assemble(iteration: Int, rows: Range<Int>, into batch: BatchBuffers, node: Int) {
        let sparse = encoding == .sparse ? sparseRows(node) : nil
        images.labels.withUnsafeBufferPointer { labels in
            for row in rows {
                let index = sampler.index(iteration: iteration, row: row)
                batch.setRow(row, image: index, label: Int32(labels[index]), sparse: sparse)
            }
        }
        guard encoding == .dense else { return }
        let n = images.pixelsPerImage
        self.pixels(node).withBytes { pixels in
            for row in rows {
                let image = pixels + batch.sampleIndices[row] * n
                for offset in stride(from: 0, to: n, by: 64) { csupport_prefetch(image + offset) }
            }
            for row in rows {
                kernels.normalizePixels(pixels + batch.sampleIndices[row] * n, n, batch.x.pointer + row * n)
            }
        }
    }
}
