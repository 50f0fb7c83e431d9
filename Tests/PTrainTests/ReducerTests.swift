import Kernels
import Model
import Training
import TestSupport
import XCTest

/// The reduction (parameter phase) gives the same bits for every partition of rows and parameters,
/// and equals the documented sequential sum.
final class ReducerTests: XCTestCase {
    func filledBatch(_ random: inout TestRandom, net: Network, batchSize: Int) -> BatchBuffers {
        let s = net.layout.spec
        let batch = BatchBuffers(layout: net.layout, batchSize: batchSize)
        for i in 0..<batchSize * s.input { batch.x.pointer[i] = random.symmetric() * 0.5 + 0.5 }
        for r in 0..<batchSize { batch.labels[r] = Int32(random.int(below: s.output)) }
        return batch
    }

    /// Gradients computed with `workers` row slices and parameter slices, sequentially.
    func partitionedGradient(_ kernels: KernelSet, net: Network, source: BatchBuffers, workers: Int) -> [Float] {
        let layout = net.layout
        let batch = BatchBuffers(layout: layout, batchSize: source.batchSize)
        batch.x.pointer.update(from: source.x.pointer, count: source.x.count)
        batch.labels.update(from: source.labels, count: source.batchSize)
        let backprop = Backprop(kernels: kernels.functions, layout: layout)
        backprop.packAll(net, batch)
        for w in 0..<workers {
            backprop.rowPhase(net, batch, WorkerScratch(layout: layout), rows: evenSplit(batch.batchSize, w, workers))
        }
        for w in 0..<workers {
            for slice in parameterPartition(layout.spec, w, workers) {
                backprop.parameterPhase(batch, WorkerScratch(layout: layout), slice: slice)
            }
        }
        return Array(batch.gradients.buffer)
    }

    func testGradientBitsDoNotDependOnThePartition() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 1)
            let net = Network(spec: NetworkSpec(), seed: 5)
            let batch = filledBatch(&random, net: net, batchSize: 100)
            let one = partitionedGradient(kernels, net: net, source: batch, workers: 1).map(\.bitPattern)
            for workers in [2, 3, 5, 8, 64, 100] {
                XCTAssertEqual(partitionedGradient(kernels, net: net, source: batch, workers: workers).map(\.bitPattern), one,
                               "\(kernels.variant) \(workers) workers")
            }
            // The engine's own items, run in reverse order.
            let layout = net.layout
            let copy = BatchBuffers(layout: layout, batchSize: 100)
            copy.x.pointer.update(from: batch.x.pointer, count: batch.x.count)
            copy.labels.update(from: batch.labels, count: 100)
            let backprop = Backprop(kernels: kernels.functions, layout: layout)
            backprop.packAll(net, copy)
            for start in stride(from: 96, through: 0, by: -6) {
                backprop.rowPhase(net, copy, WorkerScratch(layout: layout), rows: start..<min(start + 6, 100))
            }
            for slice in ParameterSlice.blocks(layout.spec).reversed() { backprop.parameterPhase(copy, WorkerScratch(layout: layout), slice: slice) }
            XCTAssertEqual(Array(copy.gradients.buffer).map(\.bitPattern), one, "\(kernels.variant) engine items")
        }
    }

    /// docs/reproducibility.md: dW_l[i, j] = Σ_{r = 0..<B} in_l[r, i]·d_l[r, j] (in_1 = x, in_l =
    /// z_(l−1) above), accumulated from zero in row order with the variant's multiply-add (one
    /// block, since B <= 512); db_l[j] = Σ_r d_l[r, j] in row order with plain additions. Checked on
    /// every layer of a net with two hidden layers.
    func testReductionEqualsTheDocumentedSequentialSum() {
        for kernels in supportedKernelSets {
            var random = TestRandom(seed: 2)
            let net = Network(spec: NetworkSpec(input: 30, hidden: [20, 12], output: 10), seed: 3)
            let batch = filledBatch(&random, net: net, batchSize: 37)
            let layout = net.layout
            let g = partitionedGradient(kernels, net: net, source: batch, workers: 3)
            // Recompute the layers' inputs and deltas with one worker to read them back.
            let single = BatchBuffers(layout: layout, batchSize: 37)
            single.x.pointer.update(from: batch.x.pointer, count: batch.x.count)
            single.labels.update(from: batch.labels, count: 37)
            Backprop(kernels: kernels.functions, layout: layout).gradient(net, single, WorkerScratch(layout: layout))
            let fused = kernels.variant.rounding == .avx2 || !isX86
            for layer in layout.layers {
                let input = layer.index == 0 ? single.x.pointer : single.current.z(layer.index - 1)
                let d = single.current.d(layer.index)
                for i in 0..<layer.inputs {
                    for j in 0..<layer.outputs {
                        var acc: Float = 0
                        for r in 0..<37 {
                            let xv = input[r * layer.inputs + i], dv = d[r * layer.outputs + j]
                            acc = fused ? acc.addingProduct(xv, dv) : acc + xv * dv
                        }
                        XCTAssertEqual(g[layer.weights.lowerBound + i * layer.outputs + j].bitPattern, acc.bitPattern,
                                       "\(kernels.variant) dW\(layer.index + 1)[\(i), \(j)]")
                    }
                }
                for j in 0..<layer.outputs {
                    var acc: Float = 0
                    for r in 0..<37 { acc += d[r * layer.outputs + j] }
                    XCTAssertEqual(g[layer.bias.lowerBound + j].bitPattern, acc.bitPattern, "db\(layer.index + 1)[\(j)]")
                }
            }
        }
    }
}
