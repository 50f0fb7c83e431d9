import Checkpoint
import Dataset
import Kernels
import Model
import TestSupport
import Training
import XCTest

/// The update rules and schedules: each kernel bit for bit against its scalar formula, the
/// schedules' values, Adam's bias correction from t alone, and the contract (one digest for any
/// worker count, and across a resume) for every optimizer.
final class OptimizerTests: XCTestCase {
    static let mnist = try! MNIST.loadEmbedded()

    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    /// Every element's update equals `Reference`'s scalar formula bit for bit: separately rounded
    /// operations, the same in every variant, at every position (tails included).
    func testUpdateKernelsEqualTheScalarFormulasBitwise() {
        var random = TestRandom(seed: 21)
        for kernels in supportedKernelSets {
            for count in [1, 5, 8, 13, 100] {
                let p0 = random.floats(count), g = random.floats(count, scale: 0.1)
                let s0 = random.floats(count, scale: 0.05), s1 = random.floats(count, scale: 0.01).map { $0 * $0 }
                for decay: Float in [0, 1e-3] {
                    var p = p0
                    p.withUnsafeMutableBufferPointer { pp in g.withUnsafeBufferPointer { kernels.functions.sgdDecayStep(pp.baseAddress!, $0.baseAddress!, count, 0.05, decay) } }
                    XCTAssertEqual(bits(p), bits(zip(p0, g).map { Reference.sgd($0, $1, rate: 0.05, decay: decay) }), "\(kernels.variant) sgd \(count) λ \(decay)")
                    for nesterov in [false, true] {
                        var p = p0, v = s0
                        p.withUnsafeMutableBufferPointer { pp in v.withUnsafeMutableBufferPointer { vp in g.withUnsafeBufferPointer {
                            kernels.functions.momentumStep(pp.baseAddress!, $0.baseAddress!, vp.baseAddress!, count, 0.05, 0.9, decay, nesterov)
                        } } }
                        let expected = (0..<count).map { Reference.momentum(p0[$0], g[$0], velocity: s0[$0], rate: 0.05, momentum: 0.9, decay: decay, nesterov: nesterov) }
                        XCTAssertEqual(bits(p), bits(expected.map(\.0)), "\(kernels.variant) momentum \(count) nesterov \(nesterov)")
                        XCTAssertEqual(bits(v), bits(expected.map(\.1)))
                    }
                    for decoupled in [false, true] {
                        var p = p0, m = s0, v = s1
                        let c = AdamConstants(rate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, correction1: 0.19, correction2: 0.002996,
                                              decay: decay, decoupled: decoupled)
                        p.withUnsafeMutableBufferPointer { pp in m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
                            g.withUnsafeBufferPointer { kernels.functions.adamStep(pp.baseAddress!, $0.baseAddress!, mp.baseAddress!, vp.baseAddress!, count, c) }
                        } } }
                        let expected = (0..<count).map {
                            Reference.adam(p0[$0], g[$0], m: s0[$0], v: s1[$0], rate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8,
                                           correction1: 0.19, correction2: 0.002996, decay: decay, decoupled: decoupled)
                        }
                        XCTAssertEqual(bits(p), bits(expected.map(\.0)), "\(kernels.variant) adam \(count) decoupled \(decoupled) λ \(decay)")
                        XCTAssertEqual(bits(m), bits(expected.map(\.1)))
                        XCTAssertEqual(bits(v), bits(expected.map(\.2)))
                    }
                }
            }
        }
    }

    /// The schedules' documented values (docs/reproducibility.md).
    func testSchedules() {
        let base: Float = 0.1
        var s = LearningRateSchedule()
        XCTAssertEqual((0..<50).map { s.rate($0, base: base, total: 50).bitPattern }, Array(repeating: base.bitPattern, count: 50),
                       "constant without warmup is the base rate's bits")
        s.warmup = 10
        XCTAssertEqual(s.rate(0, base: base, total: 50), Float(0.1 * 1 / 10.0))
        XCTAssertEqual(s.rate(9, base: base, total: 50), Float(Double(base)))
        XCTAssertEqual(s.rate(10, base: base, total: 50), base)
        s = LearningRateSchedule()
        s.kind = .step
        s.decayEvery = 100
        s.decayFactor = 0.5
        XCTAssertEqual(s.rate(99, base: base, total: 1000), Float(Double(base)))
        XCTAssertEqual(s.rate(100, base: base, total: 1000), Float(Double(base) * 0.5))
        XCTAssertEqual(s.rate(250, base: base, total: 1000), Float(Double(base) * 0.25))
        s = LearningRateSchedule()
        s.kind = .cosine
        s.warmup = 100
        XCTAssertEqual(s.rate(100, base: base, total: 1100), Float(Double(base)))
        XCTAssertEqual(s.rate(600, base: base, total: 1100), Float(Double(base) / 2), accuracy: 1e-9)
        XCTAssertLessThan(s.rate(1099, base: base, total: 1100), 1e-6)
        XCTAssert((100..<1099).allSatisfy { s.rate($0 + 1, base: base, total: 1100) <= s.rate($0, base: base, total: 1100) }, "cosine decreases")
    }

    /// Adam's corrections depend on t = k + 1 alone: recomputed for any k they are 1 − β^t in
    /// Float64, rounded once, whatever came before (so a resume cannot drift).
    func testAdamBiasCorrectionIsAFunctionOfTheStepAlone() {
        let adam = Adam(learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, decoupled: false,
                        schedule: LearningRateSchedule())
        for k in [0, 1, 9, 999, 123_456] {
            let step = adam.step(iteration: k, total: 200_000)
            XCTAssertEqual(step.correction1, Float(1 - pow(Double(Float(0.9)), Double(k + 1))), "k \(k)")
            XCTAssertEqual(step.correction2, Float(1 - pow(Double(Float(0.999)), Double(k + 1))), "k \(k)")
            XCTAssertEqual(step, adam.step(iteration: k, total: 200_000))
        }
    }

    func configure(_ kind: OptimizerKind, _ c: inout TrainingConfiguration) {
        c.hidden = [64, 32]
        c.activation = .relu
        c.initialization = .he
        c.optimizer.kind = kind
        c.optimizer.weightDecay = kind == .sgd ? 0 : 1e-4
        c.learningRate = kind == .adam || kind == .adamw ? 0.001 : 0.05
        c.schedule.kind = .cosine
        c.schedule.warmup = 10
    }

    /// Every optimizer: one digest for workers 1, 2, 3 and 8, and for a run saved after 30
    /// iterations (with its optimizer state, through the checkpoint format) and continued at
    /// another worker count.
    func testEveryOptimizerKeepsTheContract() throws {
        let kernels = try KernelSet.best()
        let builder = RunBuilder(kernels: kernels)
        for kind in OptimizerKind.allCases {
            var c = TrainingConfiguration()
            c.iterations = 80
            configure(kind, &c)
            let reference = builder.train(c, on: Self.mnist.train).net.parametersSHA256
            for workers in [2, 3, 8] {
                c.workers = workers
                XCTAssertEqual(builder.train(c, on: Self.mnist.train).net.parametersSHA256, reference, "\(kind), \(workers) workers")
            }
            // Stopped after iteration 30, saved and read back, continued on 3 workers.
            c.workers = 2
            let net = builder.initialNetwork(c, for: Self.mnist.train)
            let first = builder.trainer(c, net: net, train: Self.mnist.train)
            let stop = first.stopRequest
            XCTAssertEqual(first.run { if $0.iteration == 30 { stop.set() } }.stop, .interrupted)
            let saved = try TrainingCheckpoint.decode(TrainingCheckpoint(net: net, iteration: 30, configuration: c, datasetSHA256: "x",
                                                                         kernels: kernels.variant.rawValue,
                                                                         optimizerState: first.optimizerState).encoded(), path: "mem")
            XCTAssertEqual(saved.configuration.optimizer, c.optimizer)
            XCTAssertEqual(saved.configuration.schedule, c.schedule)
            XCTAssertEqual(Array(saved.optimizerState.buffer.buffer).map(\.bitPattern), Array(first.optimizerState.buffer.buffer).map(\.bitPattern))
            c.workers = 3
            let second = builder.trainer(c, net: saved.net, train: Self.mnist.train, start: saved.iteration, state: saved.optimizerState)
            XCTAssertEqual(second.run().stop, .completed)
            XCTAssertEqual(saved.net.parametersSHA256, reference, "\(kind) resumed at iteration 30 on 3 workers")
        }
    }
}
