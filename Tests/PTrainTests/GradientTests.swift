import Kernels
import Model
import TestSupport
import XCTest

/// The lecture's check, asserted: backprop against the numerical gradient, and the fast Float32
/// backprop against the Float64 reference twin.
final class GradientTests: XCTestCase {
    /// A small random net with weights large enough that every gradient is well above rounding.
    func randomNet(_ random: inout TestRandom, shape: NetworkShape) -> TwoLayerNet {
        let net = TwoLayerNet(shape: shape)
        for i in 0..<net.layout.count { net.parameters.pointer[i] = random.symmetric() }
        return net
    }

    /// Float64 backprop vs the central difference with h = 1e-4, for every parameter of W1, b1, W2, b2.
    /// Backprop's dy = (y − t)/B is the exact gradient of the cross-entropy without the lecture's
    /// 1e-7 guard inside the log (the guard shifts the gradient by a relative 1e-7/y_t, up to 1e-5
    /// here), so the check differentiates the unguarded loss.
    /// The difference's truncation error is h²/6·|f'''| (about 2e-9 for these O(1) losses) and its
    /// rounding error about ε·|f|/h (5e-12), so 1e-7 absolute plus 1e-6 relative is a bound with margin
    /// that a wrong formula (errors of order |g|) cannot meet.
    func testReferenceBackpropMatchesNumericalGradient() {
        forEachSeed(4) { random in
            let shape = NetworkShape(input: 5 + Int(random.seed), hidden: 4 + Int(random.seed), output: 10)
            let net = ReferenceNet<Double>(randomNet(&random, shape: shape))
            let batch = 3 + Int(random.seed)
            let x = (0..<batch * shape.input).map { _ in Double(random.symmetric() * 0.5 + 0.5) }
            let labels = (0..<batch).map { _ in random.int(below: 10) }
            let analytic = net.gradient(x, labels: labels)
            let numeric = numericalGradient(of: { (p: [Double]) in ReferenceNet(layout: net.layout, parameters: p).loss(x, labels: labels, guard: 0) },
                                            at: net.parameters)
            for (name, range, _) in net.layout.tensors {
                assertClose(Array(analytic[range]), Array(numeric[range]),
                            tolerance: numeric[range].map { 1e-7 + 1e-6 * abs($0) }, "seed \(random.seed) \(name)")
            }
        }
    }

    /// Fast Float32 gradient (each kernel variant) vs the Float64 twin, on awkward shapes.
    /// Each gradient element is a chain of three dot products (forward over `input`, back through
    /// W2 over `output`, the batch sum over B), each with relative error at most γ_k of its magnitude,
    /// plus a few u from exp and the divisions; γ_(input + output + batch + 16), applied to the
    /// largest gradient of the tensor, bounds them all.
    func testFastBackpropMatchesFloat64Reference() {
        for kernels in supportedKernelSets {
            forEachSeed(3) { random in
                let shapes = [NetworkShape(input: 784, hidden: 100, output: 10), NetworkShape(input: 17, hidden: 7, output: 10),
                              NetworkShape(input: 1, hidden: 1, output: 3)]
                let shape = shapes[Int(random.seed)]
                let batchSize = [100, 7, 1][Int(random.seed)]
                let net = randomNet(&random, shape: shape)
                let batch = BatchBuffers(layout: net.layout, batchSize: batchSize)
                var labels = [Int]()
                for r in 0..<batchSize {
                    for i in 0..<shape.input { batch.x.pointer[r * shape.input + i] = random.symmetric() * 0.5 + 0.5 }
                    labels.append(random.int(below: shape.output))
                    batch.labels[r] = Int32(labels[r])
                }
                Backprop(kernels: kernels.functions, layout: net.layout).gradient(net, batch, WorkerScratch(layout: net.layout))
                let fast = Array(batch.gradients.buffer).map(Double.init)
                let reference = ReferenceNet<Double>(net).gradient(Array(batch.x.buffer).map(Double.init), labels: labels)
                for (name, range, _) in net.layout.tensors {
                    let scale = reference[range].map(abs).max()!
                    let tolerance = gamma(shape.input + shape.output + batchSize + 16) * scale
                    assertClose(Array(fast[range]), Array(reference[range]), tolerance: Array(repeating: tolerance, count: range.count),
                                "\(kernels.variant) seed \(random.seed) \(name)")
                }
                XCTAssertEqual(Double(batch.meanLoss), ReferenceNet<Double>(net).loss(Array(batch.x.buffer).map(Double.init), labels: labels),
                               accuracy: 1e-5, "\(kernels.variant) loss")
            }
        }
    }

    func testInitialisationIsTheLectures() {
        let net = TwoLayerNet(shape: NetworkShape(), seed: 42)
        let l = net.layout
        XCTAssertEqual(l.count, 784 * 100 + 100 + 100 * 10 + 10)
        let p = net.parameterArray
        XCTAssert(p[l.b1].allSatisfy { $0 == 0 } && p[l.b2].allSatisfy { $0 == 0 })
        let w = p[l.w1].map(Double.init)
        let mean = w.reduce(0, +) / Double(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)).squareRoot()
        // 78,400 samples: standard errors 3.6e-5 (mean) and 2.5e-5 (std).
        XCTAssertEqual(mean, 0, accuracy: 2e-4)
        XCTAssertEqual(std, 0.01, accuracy: 2e-4)
        XCTAssertEqual(TwoLayerNet(shape: NetworkShape(), seed: 42).parameterArray, p)
        XCTAssertNotEqual(TwoLayerNet(shape: NetworkShape(), seed: 43).parameterArray, p)
    }
}
