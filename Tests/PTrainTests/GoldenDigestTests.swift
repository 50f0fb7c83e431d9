import Dataset
import Foundation
import Kernels
import Model
import TestSupport
import Training
import XCTest

/// Golden digests: the bits each kernel variant produces, pinned, so that a change anywhere in
/// the engine that moves a bit is caught even when every run still agrees with every other.
/// A digest changes only with a documented reason (docs/reproducibility.md).
final class GoldenDigestTests: XCTestCase {
    static let mnist = try! MNIST.loadEmbedded()

    /// `params_sha256` of runs on the embedded MNIST with `flags` applied to the defaults, per variant.
    struct Golden {
        var name: String
        var iterations: Int
        var configure: (inout TrainingConfiguration) -> Void
        var digests: [KernelVariant: String]
    }

    static let goldens: [Golden] = [
        // The lecture's run: 10,000 iterations, batch 100, lr 0.1, seed 1 (test accuracy 0.9458 on both).
        Golden(name: "default run", iterations: 10_000, configure: { _ in }, digests: [
            .avx2: "f7e039d74ea5514c99ed8cf554bf047723845509f8510e928710e5aadb051cea",
            .baseline: "f10affdcfabe6292559ed7800f4d8b10a37e8ec0947affca283187f874ba0074"]),
        Golden(name: "sigmoid, lecture init", iterations: 200, configure: { _ in }, digests: [
            .avx2: "d934b00631d03d0ceb7947c0e4b733dcc9c0f43bde6eee207b635f7d82f62be6",
            .baseline: "c44a2df143ade1b0f9b41fb968615dd7a3b4cba1fe55ec660d3125503092931c"]),
        Golden(name: "relu", iterations: 200, configure: { $0.activation = .relu }, digests: [
            .avx2: "99e42687445064b3f0e3c973ca9a945c97ef4705e49abb843ae52a16bfe7841b",
            .baseline: "bf8bd40e2634da8112abdeb23d5d69502c0c35fb408d091dc2ac678f8fd313fe"]),
        Golden(name: "tanh", iterations: 200, configure: { $0.activation = .tanh }, digests: [
            .avx2: "52e89a90175cf220375c7aa93d75feaab698ed593af19181e946a7813243ba3c",
            .baseline: "1574a4a8f9b805f64b3cb679523782bede4b7397fa9d670e90df5a677c870119"]),
        Golden(name: "he init", iterations: 200, configure: { $0.initialization = .he }, digests: [
            .avx2: "32dd038ccc1082c5f780d08f653602f77a2bb810e802dfa8e7d3ee970d44b7d3",
            .baseline: "c6b8d27db3dfac9f730e409c675b995817837645f3c7f7fe357ba5ac50b48c05"]),
        Golden(name: "glorot init", iterations: 200, configure: { $0.initialization = .glorot }, digests: [
            .avx2: "7a06b930f58fdbe8852bffb68652e8e96eb4296f03bb0f7e0df3c2ce3f389436",
            .baseline: "6b4582f731cb6b69f4bb23daa7d1c1236c086c39f432d9a56fe2ac5481c291f3"]),
        Golden(name: "784-64-32-16-10 relu he", iterations: 200,
               configure: { $0.hidden = [64, 32, 16]; $0.activation = .relu; $0.initialization = .he }, digests: [
            .avx2: "b14124a6ac7f2a3ac299880bd133c1511c495fe1f862a09e4883d2f4fa0a4ce6",
            .baseline: "431d1b79580c92ed342eebb897d206630449c054f6547965b44e2360253ea9af"]),
        Golden(name: "step schedule", iterations: 200,
               configure: { $0.schedule.kind = .step; $0.schedule.decayEvery = 50; $0.schedule.decayFactor = 0.5 }, digests: [
            .avx2: "5195c7fae8331e9b4b24b52364ba71fda2d0276b5d86cdbd56d32db8eda3aaef",
            .baseline: "1a3a1e6a5ffe1a75a80fc30b8e186c940426fac37ae74af67e504dd808dafc38"]),
    ] + optimizerGoldens

    /// Each optimizer on 784-64-32-10 ReLU (He init), cosine schedule with 10 warmup iterations,
    /// λ = 1e-4 except for SGD: `ptrain --hidden 64,32 --activation relu --init he --schedule cosine
    /// --warmup 10 --iterations 200 --optimizer KIND --learning-rate η [--weight-decay 0.0001]`.
    static let optimizerGoldens: [Golden] = [
        (OptimizerKind.sgd, "d34b8ee501c5e6d5ee3b94c92b3226fecb92ba017da14bb8eb1585dedfc1c6b4", "cb5779d1101cb48affe9ccc15ec76e59bfea7c906a4021852a12ed11fb47226a"),
        (.momentum, "c976a0c17ed9fedb102ea43e79c99ef07cfcbe2b78b3caf87ea60fff075890ca", "a2e41e5c508700318e9475800ebb60564a486777aa75d3a8ae74ad8873357640"),
        (.nesterov, "203a8cac156d68c5997c4ab0a2f28fe11092d5e2e0f952aec6e8fc3e8bcd6fff", "6b20b0e45603335f596566f74d1f591609eb97355b8398b1dbdb3ada50c394b6"),
        (.adam, "103322d562016ebdad2da9ac54c17d50e1016876585d4d92033426206c78d151", "53794028c5bebf526df6c3a409b6798c6953530ae574be42e26139f713367190"),
        (.adamw, "4ceff591d15d847d071e1f79aaa78c07dc8dc7606a911dedf0d9364a9ae0774e", "3b9c6ad97087cd7de6e321ea8c52605f769d1fc570dd756a3f9c898009936d9c"),
    ].map { kind, avx2, baseline in
        Golden(name: "optimizer \(kind.rawValue)", iterations: 200, configure: { c in
            c.hidden = [64, 32]
            c.activation = .relu
            c.initialization = .he
            c.schedule.kind = .cosine
            c.schedule.warmup = 10
            c.optimizer.kind = kind
            c.learningRate = kind == .adam || kind == .adamw ? 0.001 : 0.05
            if kind != .sgd { c.optimizer.weightDecay = 0.0001 }
        }, digests: [.avx2: avx2, .baseline: baseline])
    }

    func testGoldenDigests() throws {
        #if !arch(x86_64)
        throw XCTSkip("the baseline digests are x86-64's (SSE2, separate multiply and add); arm64's baseline fuses")
        #endif
        var checked = 0
        for kernels in supportedKernelSets {
            let builder = RunBuilder(kernels: kernels)
            for golden in Self.goldens {
                // avx512 must give avx2's bits (KernelVariant.rounding): it is checked against them.
                guard let expected = golden.digests[kernels.variant.rounding] else { continue }
                var c = TrainingConfiguration()
                c.iterations = golden.iterations
                c.workers = 2
                golden.configure(&c)
                let (net, outcome) = builder.train(c, on: Self.mnist.train)
                XCTAssertEqual(outcome.stop, .completed)
                XCTAssertEqual(net.parametersSHA256, expected, "\(kernels.variant): \(golden.name)")
                checked += 1
            }
        }
        if !KernelVariant.avx2.isSupported { throw XCTSkip("this CPU has no AVX2 + FMA: only the baseline digests were checked") }
        XCTAssertEqual(checked, supportedKernelSets.count * Self.goldens.count)
    }

    /// Where every run starts, pinned independently of the kernels: the lecture net's initial
    /// weights (seed 1) and He-initialised weights of a deeper net (seed 7), and the first batches'
    /// sample indices in both sampling modes (seed 1, MNIST's 60,000 images, batch 100), including
    /// the last iteration of the lecture's run and the first batch of the second epoch.
    static let initialDigests: [(spec: NetworkSpec, seed: UInt64, digest: String)] = [
        (NetworkSpec(input: 784, hidden: [100], output: 10), 1, "ac8442bc3d8927d5f1c2e2f9f1651a0bd62dc8810a5fa68e4c1aea0508fc6991"),
        (NetworkSpec(input: 784, hidden: [64, 32], output: 10, activation: .relu, initialization: .he), 7, "a62dfa0ce2fc8e8c2aeb07862e6d2d281233784e456e04217bfe9be1df6f9a75"),
    ]
    static let batchQueries: [(mode: SamplingMode, iteration: Int, indices: [Int])] = [
        (.replacement, 0, [25162, 29309, 17336, 9384, 12779, 48341, 45923, 15767, 46501, 21241]),
        (.replacement, 9999, [46204, 49511, 53404, 59277]),
        (.epoch, 0, [32385, 14475, 25805, 22777, 13762, 15011, 39656, 29826, 55805, 31739]),
        (.epoch, 600, [35125, 11763, 37146, 32624]),
    ]

    func indices(_ mode: SamplingMode, iteration: Int, rows: Int) -> [Int] {
        let sampler = BatchSampler(mode: mode, seed: 1, sampleCount: 60_000, batchSize: 100)
        sampler.prepare(iteration: iteration)
        return (0..<rows).map { sampler.index(iteration: iteration, row: $0) }
    }

    func testInitialWeightsAndFirstBatchesArePinned() {
        for (spec, seed, digest) in Self.initialDigests {
            XCTAssertEqual(Network(spec: spec, seed: seed).parametersSHA256, digest, "\(spec.description), seed \(seed)")
        }
        for (mode, iteration, expected) in Self.batchQueries {
            XCTAssertEqual(indices(mode, iteration: iteration, rows: expected.count), expected, "\(mode), iteration \(iteration)")
        }
    }

    /// Tests/python/reference_random.py, a numpy port written from docs/reproducibility.md,
    /// reproduces the pinned indices and initial weights bit for bit (so the documented formulas
    /// are the ones ptrain runs), and agrees with ptrain on a whole further batch of each mode.
    func testPythonPortOfTheSamplerAndInitialisation() throws {
        let python = try checkpointPython()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/reference_random.py")
        for (spec, seed, digest) in Self.initialDigests {
            let initialisation: [String: Any] = ["widths": spec.widths, "init": spec.initialization.rawValue, "seed": seed]
            var query: [String: Any] = ["seed": 1, "sample_count": 60_000, "batch_size": 100, "init": initialisation]
            query["replacement"] = Self.batchQueries.filter { $0.mode == .replacement }.map { [$0.iteration, $0.indices.count] } + [[123_456, 100]]
            query["epoch"] = Self.batchQueries.filter { $0.mode == .epoch }.map { [$0.iteration, $0.indices.count] } + [[1799, 100]]
            let process = Process(), out = Pipe()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python, script.path, String(decoding: try JSONSerialization.data(withJSONObject: query), as: UTF8.self)]
            process.standardOutput = out
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            let answer = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual(answer["init_sha256"] as? String, digest, "\(spec.description), seed \(seed)")
            let first = Network(spec: spec, seed: seed).parameterArray.prefix(8).map { Int($0.bitPattern) }
            XCTAssertEqual(answer["init_first"] as? [Int], first)
            for mode in SamplingMode.allCases {
                let rows = try XCTUnwrap(answer[mode.rawValue] as? [[Int]])
                let queries = Self.batchQueries.filter { $0.mode == mode }
                for (i, (_, iteration, expected)) in queries.enumerated() {
                    XCTAssertEqual(rows[i], expected, "\(mode), iteration \(iteration)")
                }
                let extra = mode == .replacement ? 123_456 : 1799
                XCTAssertEqual(rows[queries.count], indices(mode, iteration: extra, rows: 100), "\(mode), iteration \(extra)")
            }
        }
    }
}
