import CSupport
import Dataset
import Kernels
import Model
import Parallel

/// The sharded loader: the training images stay compact (bytes) in one copy per NUMA node in use,
/// and each worker assembles its own rows of every batch, normalized, from its node's copy.
///
/// Why one copy per node rather than a split: batches are drawn from the whole set, so with a split
/// (1 − 1/nodes) of every worker's reads would cross nodes; a full copy costs 47 MB per node for
/// MNIST and makes every read local. With one node there is a single copy and nothing is copied.
public final class ShardedLoader: @unchecked Sendable {
    public let images: LabeledImages
    public let sampler: BatchSampler
    /// Node id -> that node's copy of the pixels.
    let copies: [Int: NodeLocalBytes]

    let kernels: KernelFunctions

    public init(images: LabeledImages, sampler: BatchSampler, nodes: [Int], kernels: KernelFunctions) {
        self.images = images
        self.sampler = sampler
        self.kernels = kernels
        var copies: [Int: NodeLocalBytes] = [:]
        for node in nodes { copies[node] = NodeLocalBytes(images.pixels, node: node, replicate: nodes.count > 1) }
        self.copies = copies
    }

    /// Fills `rows` of `batch.x` and `batch.labels` for `iteration`, reading from `node`'s copy.
    /// The rows' images lie at random places in 47 MB, so their cache lines are requested all at
    /// once (prefetch) before any is converted: the misses overlap instead of queueing.
    public func assemble(iteration: Int, rows: Range<Int>, into batch: BatchBuffers, node: Int) {
        let n = images.pixelsPerImage
        let copy = copies[node] ?? copies.values.first!
        copy.withBytes { pixels in
            images.labels.withUnsafeBufferPointer { labels in
                for row in rows {
                    let index = sampler.index(iteration: iteration, row: row)
                    batch.labels[row] = Int32(labels[index])
                    batch.sampleIndices[row] = index
                    for offset in stride(from: 0, to: n, by: 64) { csupport_prefetch(pixels + index * n + offset) }
                }
                for row in rows {
                    kernels.normalizePixels(pixels + batch.sampleIndices[row] * n, n, batch.x.pointer + row * n)
                }
            }
        }
    }
}
