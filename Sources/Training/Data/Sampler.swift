import Seeding

/// How a batch's sample indices are drawn.
public enum SamplingMode: String, CaseIterable, Sendable, Codable {
    /// The lecture: each row uniformly from all samples, with replacement (`np.random.choice`).
    case replacement
    /// Each epoch a fresh permutation; consecutive batches walk it, so every sample is seen exactly
    /// once per epoch (a batch may straddle two epochs).
    case epoch
}

/// Which sample fills row r of iteration i: a pure function of (seed, mode, i, r), independent of
/// the worker count and of thread timing (docs/reproducibility.md gives the exact counters).
public final class BatchSampler: @unchecked Sendable {
    /// With replacement (the lecture's) or once per epoch.
    public let mode: SamplingMode
    /// The training set's size.
    public let sampleCount: Int
    /// Rows per batch.
    public let batchSize: Int
    let rng: Philox4x32
    /// Permutations of the epochs the current and next iteration touch; written only by
    /// `prepare`, which the engine calls in its serial step, read by all workers in the row phase.
    private var permutations: [Int: [Int32]] = [:]

    /// The sampler of a run: its batches are a pure function of these four values and the iteration.
    public init(mode: SamplingMode, seed: UInt64, sampleCount: Int, batchSize: Int) {
        precondition(sampleCount > 0 && sampleCount <= Int(Int32.max) && batchSize > 0)
        self.mode = mode
        self.sampleCount = sampleCount
        self.batchSize = batchSize
        rng = Philox4x32(seed: seed)
    }

    /// Sample index of `row` in `iteration`. In epoch mode, `prepare(iteration)` must have run.
    @inline(__always)
    public func index(iteration: Int, row: Int) -> Int {
        switch mode {
        case .replacement:
            // One Philox block serves two rows: words (0, 1) for even rows, (2, 3) for odd rows.
            let it = UInt64(iteration)
            let w = rng.block(SIMD4(UInt32(row / 2), UInt32(truncatingIfNeeded: it), UInt32(truncatingIfNeeded: it >> 32),
                                    RandomStream.batchWithReplacement.rawValue))
            return row % 2 == 0 ? Philox4x32.uniform(w[0], w[1], below: sampleCount)
                                : Philox4x32.uniform(w[2], w[3], below: sampleCount)
        case .epoch:
            let position = iteration * batchSize + row
            let epoch = position / sampleCount
            guard let permutation = permutations[epoch] else {
                preconditionFailure("BatchSampler.prepare(\(iteration)) was not called before index(iteration:row:)")
            }
            return Int(permutation[position % sampleCount])
        }
    }

    /// Makes the epochs that `iteration` touches available, dropping older ones. Not thread-safe:
    /// call it from one thread while no worker reads.
    public func prepare(iteration: Int) {
        guard mode == .epoch else { return }
        let first = iteration * batchSize / sampleCount
        let last = (iteration * batchSize + batchSize - 1) / sampleCount
        for epoch in first...last where permutations[epoch] == nil {
            permutations[epoch] = permutation(epoch: epoch)
        }
        for old in permutations.keys where old < first { permutations[old] = nil }
    }

    /// Fisher-Yates: for step s = n−1 down to 1, swap positions s and j = uniform(0...s) drawn from
    /// the block at counter (s lo, s hi, epoch, `RandomStream.epochShuffle`), words 0 and 1.
    public func permutation(epoch: Int) -> [Int32] {
        var p = (0..<Int32(sampleCount)).map { $0 }
        var s = sampleCount - 1
        while s > 0 {
            let step = UInt64(s)
            let w = rng.block(SIMD4(UInt32(truncatingIfNeeded: step), UInt32(truncatingIfNeeded: step >> 32),
                                    UInt32(truncatingIfNeeded: epoch), RandomStream.epochShuffle.rawValue))
            p.swapAt(s, Philox4x32.uniform(w[0], w[1], below: s + 1))
            s -= 1
        }
        return p
    }
}
