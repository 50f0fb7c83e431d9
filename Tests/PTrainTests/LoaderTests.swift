import Dataset
import Kernels
import Model
import TestSupport
import Training
import XCTest

/// Index-valued data: image i holds i in its pixels (base 256), so a batch decodes to its indices.
final class LoaderTests: XCTestCase {
    func indexImages(_ count: Int) -> LabeledImages {
        var pixels = [UInt8]()
        for i in 0..<count { pixels += [UInt8(i & 255), UInt8(i >> 8 & 255), UInt8(i >> 16 & 255)] }
        return LabeledImages(count: count, rows: 1, columns: 3, pixels: pixels, labels: (0..<count).map { UInt8($0 % 10) })
    }

    /// Assembles `iteration` with the batch split over `workers` and decodes the sample indices.
    func indices(_ loader: ShardedLoader, iteration: Int, batchSize: Int, workers: Int) -> [Int] {
        let batch = BatchBuffers(layout: ParameterLayout(NetworkSpec(input: 3, hidden: [1], output: 10)), batchSize: batchSize)
        for w in 0..<workers { loader.assemble(iteration: iteration, rows: evenSplit(batchSize, w, workers), into: batch, node: 0) }
        return (0..<batchSize).map { r in
            let p = (0..<3).map { Int((batch.x.pointer[r * 3 + $0] * 255).rounded()) }
            let index = p[0] | p[1] << 8 | p[2] << 16
            XCTAssertEqual(Int(batch.labels[r]), index % 10, "label travels with its image")
            return index
        }
    }

    func testBatchIsTheSameForAnyWorkerCount() {
        for mode in SamplingMode.allCases {
            let sampler = BatchSampler(mode: mode, seed: 99, sampleCount: 1000, batchSize: 64)
            let loader = ShardedLoader(images: indexImages(1000), sampler: sampler, nodes: [0], kernels: try! KernelSet.best().functions)
            for iteration in [0, 1, 15, 16, 31] {
                sampler.prepare(iteration: iteration)
                let one = indices(loader, iteration: iteration, batchSize: 64, workers: 1)
                for workers in [2, 3, 5, 8, 64] {
                    XCTAssertEqual(indices(loader, iteration: iteration, batchSize: 64, workers: workers), one, "\(mode) it \(iteration) w \(workers)")
                }
                XCTAssert(one.allSatisfy { (0..<1000).contains($0) })
            }
        }
    }

    /// Batch 300 over 1,000 samples: batches straddle epochs; each epoch's 1,000 positions hold
    /// every index exactly once.
    func testEpochModeVisitsEverySampleOncePerEpoch() {
        let sampler = BatchSampler(mode: .epoch, seed: 5, sampleCount: 1000, batchSize: 300)
        let loader = ShardedLoader(images: indexImages(1000), sampler: sampler, nodes: [0], kernels: try! KernelSet.best().functions)
        var stream = [Int]()
        for iteration in 0..<10 {
            sampler.prepare(iteration: iteration)
            stream += indices(loader, iteration: iteration, batchSize: 300, workers: 3)
        }
        for epoch in 0..<3 {
            XCTAssertEqual(stream[epoch * 1000..<(epoch + 1) * 1000].sorted(), Array(0..<1000), "epoch \(epoch)")
        }
        XCTAssertNotEqual(Array(stream[0..<1000]), Array(stream[1000..<2000]), "each epoch is shuffled anew")
    }

    /// With replacement, 100 x 1,000 draws from 10 values land near 10,000 each (σ ≈ 95).
    func testReplacementSamplingIsUniform() {
        let sampler = BatchSampler(mode: .replacement, seed: 1, sampleCount: 10, batchSize: 1000)
        var counts = [Int](repeating: 0, count: 10)
        for it in 0..<100 { for r in 0..<1000 { counts[sampler.index(iteration: it, row: r)] += 1 } }
        XCTAssert(counts.allSatisfy { abs($0 - 10_000) < 600 }, "\(counts)")
    }

    func testSeedsGiveDifferentBatches() {
        let a = BatchSampler(mode: .replacement, seed: 1, sampleCount: 60_000, batchSize: 100)
        let b = BatchSampler(mode: .replacement, seed: 2, sampleCount: 60_000, batchSize: 100)
        XCTAssertNotEqual((0..<100).map { a.index(iteration: 0, row: $0) }, (0..<100).map { b.index(iteration: 0, row: $0) })
    }
}
