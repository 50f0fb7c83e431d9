import Dataset
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

    public init(images: LabeledImages, sampler: BatchSampler, nodes: [Int]) {
        self.images = images
        self.sampler = sampler
        var copies: [Int: NodeLocalBytes] = [:]
        for node in nodes { copies[node] = NodeLocalBytes(images.pixels, node: node, replicate: nodes.count > 1) }
        self.copies = copies
    }

    /// Fills `rows` of `batch.x` and `batch.labels` for `iteration`, reading from `node`'s copy.
    public func assemble(iteration: Int, rows: Range<Int>, into batch: BatchBuffers, node: Int) {
        let n = images.pixelsPerImage
        let copy = copies[node] ?? copies.values.first!
        copy.withBytes { pixels in
            images.labels.withUnsafeBufferPointer { labels in
                for row in rows {
                    let index = sampler.index(iteration: iteration, row: row)
                    normalizePixels(pixels + index * n, count: n, into: batch.x.pointer + row * n)
                    batch.labels[row] = Int32(labels[index])
                }
            }
        }
    }
}
