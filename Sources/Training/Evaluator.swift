import Dataset
import Kernels
import Model

/// Test-set accuracy and loss with the training kernels (forward pass only).
public struct Evaluation: Equatable, Sendable {
    public var accuracy: Double
    /// Mean of −log(y_label + 1e-7) over the set.
    public var loss: Double
}

public enum Evaluator {
    /// Evaluates `net` on every image of `data`, in blocks of 500 rows.
    public static func evaluate(_ net: TwoLayerNet, on data: LabeledImages, kernels: KernelFunctions) -> Evaluation {
        let s = net.layout.shape
        let block = 500
        let x = FloatBuffer(count: block * s.input)
        let z1 = FloatBuffer(count: block * s.hidden)
        let a2 = FloatBuffer(count: block * s.output)
        let loss = FloatBuffer(count: block)
        let packA = FloatBuffer(count: GEMM.packAScratchCount)
        let packedW1 = FloatBuffer(count: GEMM.packedCount(k: s.input, n: s.hidden))
        let packedW2 = FloatBuffer(count: GEMM.packedCount(k: s.hidden, n: s.output))
        let p = UnsafePointer(net.parameters.pointer), layout = net.layout
        GEMM.packB(MatrixView(rowMajor: p + layout.w1.lowerBound, rows: s.input, columns: s.hidden), into: packedW1.pointer, kRange: 0..<s.input)
        GEMM.packB(MatrixView(rowMajor: p + layout.w2.lowerBound, rows: s.hidden, columns: s.output), into: packedW2.pointer, kRange: 0..<s.hidden)
        var labels = [Int32](repeating: 0, count: block)
        var correct = 0
        var lossSum = 0.0
        var start = 0
        while start < data.count {
            let m = min(block, data.count - start)
            data.pixels.withUnsafeBufferPointer { pixels in
                kernels.normalizePixels(pixels.baseAddress! + start * s.input, m * s.input, x.pointer)
            }
            for r in 0..<m { labels[r] = Int32(data.labels[start + r]) }
            let z = MutableMatrixView(z1.pointer, rows: m, columns: s.hidden)
            let a = MutableMatrixView(a2.pointer, rows: m, columns: s.output)
            kernels.multiply(MatrixView(rowMajor: x.pointer, rows: m, columns: s.input), packedW1.pointer, z, false, packA.pointer)
            kernels.biasSigmoid(z, p + layout.b1.lowerBound)
            kernels.multiply(z.readOnly, packedW2.pointer, a, false, packA.pointer)
            labels.withUnsafeBufferPointer { kernels.softmaxCrossEntropy(a.readOnly, p + layout.b2.lowerBound, $0.baseAddress!, m, nil, loss.pointer) }
            for r in 0..<m {
                // argmax of the logits (adding b2 and softmax are monotone per row).
                let row = a2.pointer + r * s.output
                var best = 0, bestValue = row[0] + p[layout.b2.lowerBound]
                for j in 1..<s.output where row[j] + p[layout.b2.lowerBound + j] > bestValue {
                    best = j
                    bestValue = row[j] + p[layout.b2.lowerBound + j]
                }
                if best == Int(labels[r]) { correct += 1 }
                lossSum += Double(loss.pointer[r])
            }
            start += m
        }
        return Evaluation(accuracy: Double(correct) / Double(data.count), loss: lossSum / Double(data.count))
    }
}
