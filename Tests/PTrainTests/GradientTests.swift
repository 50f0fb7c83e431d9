import Kernels
import Model
import TestSupport
import Training
import XCTest

/// The lecture's check, asserted and generalised: backprop against the numerical gradient for
/// every activation and depths 1 to 3, and the fast Float32 backprop against the Float64
/// reference twin, dense and sparse input.
final class GradientTests: XCTestCase {
    /// The networks checked: every activation at depths 1, 2 and 3, small awkward widths.
    static func specs(input: Int, classes: Int = 10) -> [NetworkSpec] {
        ActivationKind.allCases.flatMap { kind in
            [[6], [7, 5], [5, 9, 4]].map { NetworkSpec(input: input, hidden: $0, output: classes, activation: kind) }
        }
    }

    /// Random weights of variance 1/fan_in (so every layer's pre-activations are O(1) at any
    /// depth, and so are the gradients) and random biases.
    func randomNet(_ random: inout TestRandom, spec: NetworkSpec) -> Network {
        let net = Network(spec: spec)
        for layer in net.layout.layers {
            let scale = Float((3 / Double(layer.inputs)).squareRoot())
            for i in layer.weights { net.parameters.pointer[i] = random.symmetric() * scale }
            for i in layer.bias { net.parameters.pointer[i] = random.symmetric() * 0.5 }
        }
        return net
    }

    /// Float64 backprop vs the central difference with h = 1e-4, for every parameter.
    /// Backprop's dy = (y − t)/B is the exact gradient of the cross-entropy without the lecture's
    /// 1e-7 guard inside the log (the guard shifts the gradient by a relative 1e-7/y_t, up to 1e-5
    /// here), so the check differentiates the unguarded loss.
    /// The difference's truncation error is h²/6·|f'''| (about 2e-9 for these O(1) losses) and its
    /// rounding error about ε·|f|/h (5e-12), so 1e-7 absolute plus 1e-6 relative is a bound with margin
    /// that a wrong formula (errors of order |g|) cannot meet.
    ///
    /// ReLU's loss is not differentiable where a pre-activation is 0: a probe of ±h moves each
    /// pre-activation by at most a few h, so a net is drawn again until every pre-activation is at
    /// least 1e-2 from 0 (asserted), where the central difference is exact up to the bound above.
    func testReferenceBackpropMatchesNumericalGradient() {
        forEachSeed(2) { random in
            for spec in Self.specs(input: 5 + Int(random.seed)) {
                let batch = 3 + Int(random.seed)
                var net: ReferenceNet<Double>, x: [Double]
                var attempts = 0
                repeat {
                    net = ReferenceNet<Double>(randomNet(&random, spec: spec))
                    x = (0..<batch * spec.input).map { _ in Double(random.symmetric() * 0.5 + 0.5) }
                    attempts += 1
                } while spec.activation == .relu && margin(net, x, batch: batch) < 1e-2 && attempts < 100
                if spec.activation == .relu {
                    XCTAssertGreaterThanOrEqual(margin(net, x, batch: batch), 1e-2, "seed \(random.seed) \(spec.description): no net away from the kinks")
                }
                let labels = (0..<batch).map { _ in random.int(below: spec.output) }
                let analytic = net.gradient(x, labels: labels)
                let layout = net.layout
                let numeric = numericalGradient(of: { (p: [Double]) in ReferenceNet(layout: layout, parameters: p).loss(x, labels: labels, guard: 0) },
                                                at: net.parameters)
                for (name, range, _) in layout.tensors {
                    assertClose(Array(analytic[range]), Array(numeric[range]),
                                tolerance: numeric[range].map { 1e-7 + 1e-6 * abs($0) }, "seed \(random.seed) \(spec.description) \(name)")
                }
            }
        }
    }

    /// The smallest |pre-activation| of any hidden unit on any row.
    func margin(_ net: ReferenceNet<Double>, _ x: [Double], batch: Int) -> Double {
        net.forwardTrace(x, batch: batch).a.flatMap { $0 }.map(abs).min()!
    }

    /// Fast Float32 gradient (each kernel variant) vs the Float64 twin, every activation and
    /// depth, on awkward shapes and the lecture's. Each gradient element is a chain of dot products
    /// (forward over each layer's inputs, back over each layer's outputs, the batch sum over B),
    /// each with relative error at most γ_k of its magnitude, plus a few u per activation, exp and
    /// division; with weights of variance 1/fan_in no layer amplifies them, so
    /// γ_(Σ widths + B + 16·L), applied to the largest gradient of the tensor, bounds them all.
    func testFastBackpropMatchesFloat64Reference() {
        for kernels in supportedKernelSets {
            forEachSeed(3) { random in
                let input = [784, 17, 1][Int(random.seed)]
                let batchSize = [100, 7, 1][Int(random.seed)]
                var specs = Self.specs(input: input)
                if random.seed == 0 { specs.append(NetworkSpec()) }
                for spec in specs {
                    let net = randomNet(&random, spec: spec)
                    let batch = BatchBuffers(layout: net.layout, batchSize: batchSize)
                    var labels = [Int]()
                    for r in 0..<batchSize {
                        for i in 0..<input { batch.x.pointer[r * input + i] = random.symmetric() * 0.5 + 0.5 }
                        labels.append(random.int(below: spec.output))
                        batch.labels[r] = Int32(labels[r])
                    }
                    Backprop(kernels: kernels.functions, layout: net.layout).gradient(net, batch, WorkerScratch(layout: net.layout))
                    let fast = Array(batch.gradients.buffer).map(Double.init)
                    let x = Array(batch.x.buffer).map(Double.init)
                    let reference = ReferenceNet<Double>(net).gradient(x, labels: labels)
                    let bound = gamma(spec.widths.reduce(0, +) + batchSize + 16 * spec.layerCount)
                    for (name, range, _) in net.layout.tensors {
                        let tolerance = bound * reference[range].map(abs).max()!
                        assertClose(Array(fast[range]), Array(reference[range]), tolerance: Array(repeating: tolerance, count: range.count),
                                    "\(kernels.variant) seed \(random.seed) \(spec.description) \(name)")
                    }
                    XCTAssertEqual(Double(batch.meanLoss), ReferenceNet<Double>(net).loss(x, labels: labels), accuracy: 1e-5,
                                   "\(kernels.variant) \(spec.description) loss")
                }
            }
        }
    }

    func testInitialisationIsTheLectures() {
        let net = Network(spec: NetworkSpec(), seed: 42)
        let l = net.layout
        XCTAssertEqual(l.count, 784 * 100 + 100 + 100 * 10 + 10)
        let p = net.parameterArray
        XCTAssert(l.layers.allSatisfy { p[$0.bias].allSatisfy { $0 == 0 } })
        let (mean, std) = moments(p[l.layers[0].weights])
        // 78,400 samples: standard errors 3.6e-5 (mean) and 2.5e-5 (std).
        XCTAssertEqual(mean, 0, accuracy: 2e-4)
        XCTAssertEqual(std, 0.01, accuracy: 2e-4)
        XCTAssertEqual(Network(spec: NetworkSpec(), seed: 42).parameterArray, p)
        XCTAssertNotEqual(Network(spec: NetworkSpec(), seed: 43).parameterArray, p)
    }

    /// He: std √(2/fan_in); Glorot: √(2/(fan_in + fan_out)); every layer, biases 0.
    /// With n samples the sample std's standard error is std/√(2n); 6 of them is the bound.
    func testHeAndGlorotScales() {
        for initialization in [Initialization.he, .glorot] {
            let net = Network(spec: NetworkSpec(input: 784, hidden: [256, 128], output: 10, initialization: initialization), seed: 5)
            let p = net.parameterArray
            for layer in net.layout.layers {
                let expected = initialization == .he ? (2 / Double(layer.inputs)).squareRoot()
                                                      : (2 / Double(layer.inputs + layer.outputs)).squareRoot()
                let (mean, std) = moments(p[layer.weights])
                let n = Double(layer.weights.count)
                XCTAssertEqual(std, expected, accuracy: 6 * expected / (2 * n).squareRoot(), "\(initialization) W\(layer.index + 1)")
                XCTAssertEqual(mean, 0, accuracy: 6 * expected / n.squareRoot(), "\(initialization) W\(layer.index + 1)")
                XCTAssert(p[layer.bias].allSatisfy { $0 == 0 })
            }
        }
    }

    func moments(_ values: ArraySlice<Float>) -> (mean: Double, std: Double) {
        let w = values.map(Double.init)
        let mean = w.reduce(0, +) / Double(w.count)
        return (mean, (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)).squareRoot())
    }
}
