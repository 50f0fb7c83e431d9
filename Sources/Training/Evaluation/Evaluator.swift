import Dataset
import Kernels
import Model

/// Test-set accuracy and loss with the training kernels (forward pass only).
public struct Evaluation: Equatable, Sendable {
    /// The fraction of images whose largest logit is their label's.
    public var accuracy: Double
    /// Mean of −log(y_label + 1e-7) over the set.
    public var loss: Double
}

/// Accuracy and loss of a network on a labelled set, with the training's own forward pass.
public enum Evaluator {
    /// Evaluates `net` on every image of `data`, in blocks of 500 rows, with the training's own
    /// forward pass (`LayerStack.forward`) on dense rows.
    public static func evaluate(_ net: Network, on data: LabeledImages, kernels: KernelFunctions) -> Evaluation {
        let stack = LayerStack(layout: net.layout, kernels: kernels)
        let spec = net.spec, layers = net.layout.layers
        let block = 500
        let x = FloatBuffer(count: block * spec.input)
        // a_1 / z_1, ..., z_(L−1), then the logits.
        let outputs = BufferTable(counts: layers.map { block * $0.outputs })
        let packed = BufferTable(counts: layers.map(\.packedCount))
        defer { outputs.deallocate(); packed.deallocate() }
        let loss = FloatBuffer(count: block)
        let packA = FloatBuffer(count: GEMM.packAScratchCount)
        let p = UnsafePointer(net.parameters.pointer)
        for layer in layers { layer.pack(p, into: packed[layer.index], rows: 0..<layer.inputs) }
        let last = layers[layers.count - 1]
        let logits = outputs[layers.count - 1]
        let bias = p + last.bias.lowerBound
        var labels = [Int32](repeating: 0, count: block)
        var correct = 0
        var lossSum = 0.0
        var start = 0
        while start < data.count {
            let m = min(block, data.count - start)
            data.pixels.withUnsafeBufferPointer { pixels in
                kernels.normalizePixels(pixels.baseAddress! + start * spec.input, m * spec.input, x.pointer)
            }
            for r in 0..<m { labels[r] = Int32(data.labels[start + r]) }
            layers[0].forward(kernels, MatrixView(rowMajor: x.pointer, rows: m, columns: spec.input), packedW: packed[0],
                              MutableMatrixView(outputs[0], rows: m, columns: layers[0].outputs), packA: packA.pointer)
            stack.forward(p, rows: m, z: outputs.pointers, logits: logits, packedW: packed.pointers, packA: packA.pointer)
            labels.withUnsafeBufferPointer {
                SoftmaxWithLoss.loss(kernels, logits: MatrixView(rowMajor: logits, rows: m, columns: spec.output), bias: bias,
                                     labels: $0.baseAddress!, into: loss.pointer)
            }
            for r in 0..<m {
                // argmax of the logits plus the bias (softmax is monotone per row).
                let row = logits + r * spec.output
                var best = 0, bestValue = row[0] + bias[0]
                for j in 1..<spec.output where row[j] + bias[j] > bestValue {
                    best = j
                    bestValue = row[j] + bias[j]
                }
                if best == Int(labels[r]) { correct += 1 }
                lossSum += Double(loss.pointer[r])
            }
            start += m
        }
        return Evaluation(accuracy: Double(correct) / Double(data.count), loss: lossSum / Double(data.count))
    }
}
