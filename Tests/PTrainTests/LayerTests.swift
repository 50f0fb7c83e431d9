import Kernels
import Model
import TestSupport
import Training
import XCTest

/// Each layer's fast kernels against its plain reference twin.
final class LayerTests: XCTestCase {
    /// f(a + b) for every activation and variant against the Float64 formula, on awkward widths.
    /// a + b is rounded once (u·|a + b|, scaled by f' <= 1 for all three); the kernels themselves
    /// add a few u of |f|: sigmoid's and tanh's exp (2-3u), a division and a subtraction. ReLU is a
    /// comparison and adds nothing.
    func testActivationForwardMatchesReference() {
        for kernels in supportedKernelSets {
            for kind in ActivationKind.allCases {
                var random = TestRandom(seed: 2)
                for (rows, cols) in [(1, 1), (3, 7), (17, 100), (7, 9)] {
                    // Scales that reach both of tanh's branches and the exp clamp.
                    let a = random.floats(rows * cols, scale: kind == .tanh ? 3 : 12), bias = random.floats(cols, scale: 1)
                    var z = a
                    z.withUnsafeMutableBufferPointer { zp in
                        bias.withUnsafeBufferPointer {
                            kernels.functions.activation(kind).biasForward(MutableMatrixView(zp.baseAddress!, rows: rows, columns: cols), $0.baseAddress!)
                        }
                    }
                    let sums = (0..<rows * cols).map { Double(a[$0]) + Double(bias[$0 % cols]) }
                    let expected = sums.map { kind.function.reference($0) }
                    assertClose(z.map(Double.init), expected,
                                tolerance: (0..<sums.count).map { float32Roundoff * (abs(sums[$0]) + 8 * abs(expected[$0])) + 1e-45 },
                                "\(kernels.variant) \(kind) \(rows)x\(cols)")
                }
            }
        }
    }

    /// dz·f'(a) from z for every activation against the Float64 formula on the same z. Sigmoid
    /// rounds 1 − z, and two products (3u of the result); tanh rounds z·z (u·z², which 1 − z² can
    /// turn into a large relative error near |z| = 1, so the bound is absolute there); ReLU is exact.
    func testActivationBackwardMatchesReference() {
        for kernels in supportedKernelSets {
            for kind in ActivationKind.allCases {
                var random = TestRandom(seed: 3)
                let (rows, cols) = (5, 23)
                let a = random.floats(rows * cols, scale: 4), dz = random.floats(rows * cols)
                var z = a
                let zeros = [Float](repeating: 0, count: cols)
                z.withUnsafeMutableBufferPointer { zp in
                    zeros.withUnsafeBufferPointer {
                        kernels.functions.activation(kind).biasForward(MutableMatrixView(zp.baseAddress!, rows: rows, columns: cols), $0.baseAddress!)
                    }
                }
                var d = dz
                d.withUnsafeMutableBufferPointer { dp in
                    z.withUnsafeBufferPointer { zp in
                        kernels.functions.activation(kind).backward(MutableMatrixView(dp.baseAddress!, rows: rows, columns: cols),
                                                                    MatrixView(rowMajor: zp.baseAddress!, rows: rows, columns: cols))
                    }
                }
                let expected = (0..<rows * cols).map { Double(dz[$0]) * kind.function.referenceDerivative(output: Double(z[$0])) }
                let tolerance = (0..<rows * cols).map { i -> Double in
                    let zi = Double(z[i])
                    return 4 * float32Roundoff * abs(Double(dz[i])) * (zi * zi + abs(expected[i] / Double(dz[i]))) + 1e-45
                }
                assertClose(d.map(Double.init), expected, tolerance: tolerance, "\(kernels.variant) \(kind) backward")
                if kind == .relu {
                    XCTAssert(zip(d, zip(dz, a)).allSatisfy { d, p in d == (p.1 > 0 ? p.0 : 0) }, "ReLU's backward is exact")
                }
            }
        }
    }

    /// Packing W's rows as columns of Wᵀ, 16 at a time (as the update items do), gives the packed
    /// Wᵀ of the whole matrix.
    func testPackingWTransposedByRowBlocksEqualsWholePacking() {
        var random = TestRandom(seed: 4)
        for (inputs, outputs) in [(100, 10), (37, 5), (16, 1), (130, 33)] {
            let layout = ParameterLayout(NetworkSpec(input: 3, hidden: [inputs], output: outputs))
            let layer = layout.layers[1]
            let p = random.floats(layout.count)
            let whole = FloatBuffer(count: layer.packedTransposeCount), blocks = FloatBuffer(count: layer.packedTransposeCount)
            p.withUnsafeBufferPointer { pp in
                let base = pp.baseAddress!
                GEMM.packB(layer.weightMatrix(base).transposed, into: whole.pointer, kRange: 0..<outputs)
                for start in stride(from: 0, to: inputs, by: GEMM.nr) {
                    layer.packTransposed(base, into: blocks.pointer, rows: start..<min(start + GEMM.nr, inputs))
                }
            }
            XCTAssertEqual(Array(blocks.buffer).map(\.bitPattern), Array(whole.buffer).map(\.bitPattern), "\(inputs)x\(outputs)")
        }
    }

    /// The layout: W1, b1, ..., WL, bL back to back, Wl (widths[l-1], widths[l]).
    func testLayoutOfADeepNet() {
        let layout = ParameterLayout(NetworkSpec(input: 5, hidden: [4, 3, 2], output: 10))
        XCTAssertEqual(layout.tensors.map(\.name), ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"])
        XCTAssertEqual(layout.tensors.map(\.shape), [[5, 4], [4], [4, 3], [3], [3, 2], [2], [2, 10], [10]])
        XCTAssertEqual(layout.count, 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2 + 2 * 10 + 10)
        var next = 0
        for t in layout.tensors {
            XCTAssertEqual(t.range.lowerBound, next, t.name)
            next = t.range.upperBound
        }
        XCTAssertEqual(layout.layers.map(\.isOutput), [false, false, false, true])
    }
}
