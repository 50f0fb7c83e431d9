import Checkpoint
import Dataset
import KernelCore
import Kernels
import Model
import Parallel
import TestSupport
import Training
import XCTest

/// The determinism contract for plans this 2-CPU machine cannot make on its own: on simulated
/// topologies (`Topology.simulated`, what `PTRAIN_TOPOLOGY` selects) the engine plans a schedule
/// for as many workers as the layout has CPUs, so workers 3 to 128 each get a plan of their own.
/// Each case is drawn from a seed: the data (pixel count, density, set size), the network (depth and
/// widths whose row and k blocks split differently), batch size, sampling mode, input encoding,
/// optimizer, the topology and worker count, and a point where the run is stopped, saved through
/// the checkpoint format and resumed on another topology and worker count. The case must end with
/// the bits of one uninterrupted worker on the real topology.
///
/// `PTRAIN_PROPERTY_CASES=N` runs seeds 0..<N (default 100); `PTRAIN_PROPERTY_SEED=S` runs seed S
/// alone, which is how a failure (its message prints the seed) is reproduced.
final class ScheduleContractTests: XCTestCase {
    struct Case: CustomStringConvertible {
        var seed: UInt64
        var rows: Int, columns: Int, imageCount: Int, density: Int
        var config: TrainingConfiguration
        var topology: String, workers: Int
        var resumeAt: Int, resumeTopology: String, resumeWorkers: Int

        var description: String {
            "seed \(seed): \(rows)x\(columns) pixels (\(density)% non-zero), \(imageCount) images, hidden \(config.hidden), "
                + "\(config.activation), batch \(config.batchSize), \(config.sampling) sampling, input \(config.input), "
                + "\(config.optimizer.kind), \(config.iterations) iterations; \(workers) workers on \(topology), "
                + "stopped after \(resumeAt) and resumed with \(resumeWorkers) workers on \(resumeTopology) "
                + "(rerun alone: PTRAIN_PROPERTY_SEED=\(seed) swift test --filter ScheduleContractTests)"
        }
    }

    static let topologies = ["1x1", "1x3", "2x2", "2x5", "4x16", "3x7", "8x16"]

    static func draw(seed: UInt64) -> Case {
        var r = TestRandom(seed: seed)
        func pick<T>(_ values: [T]) -> T { values[r.int(below: values.count)] }
        let rows = 3 + r.int(below: 26), columns = 3 + r.int(below: 26)
        let imageCount = 40 + r.int(below: 300)
        var c = TrainingConfiguration()
        c.batchSize = 1 + r.int(below: min(128, imageCount))
        // Mostly narrow layers; one in eight wider than a k-block (512), so the next layer's
        // products split into 2 or 3 blocks that its row items straddle.
        c.hidden = (0..<1 + r.int(below: 3)).map { _ in r.int(below: 8) == 0 ? 513 + r.int(below: 600) : 1 + r.int(below: 150) }
        c.activation = pick(ActivationKind.allCases)
        c.initialization = pick(Initialization.allCases)
        c.sampling = pick(SamplingMode.allCases)
        c.input = pick([InputChoice.dense, .sparse])
        c.optimizer.kind = pick(OptimizerKind.allCases)
        c.learningRate = c.optimizer.kind == .adam || c.optimizer.kind == .adamw ? 0.001 : 0.05
        // Enough iterations for epoch sampling to cross at least one epoch boundary.
        c.iterations = max(4 + r.int(below: 20), imageCount / c.batchSize + 2)
        c.seed = 1 + UInt64(r.int(below: 1000))
        // Worker counts from 1 to the batch size, most of them beyond what 2 CPUs plan.
        func workers() -> Int { r.int(below: 4) == 0 ? 1 + r.int(below: c.batchSize) : min(c.batchSize, 3 + r.int(below: 126)) }
        return Case(seed: seed, rows: rows, columns: columns, imageCount: imageCount, density: 5 + r.int(below: 90),
                    config: c, topology: pick(topologies), workers: workers(),
                    resumeAt: 1 + r.int(below: c.iterations - 1), resumeTopology: pick(topologies), resumeWorkers: workers())
    }

    /// Images whose pixels are non-zero with probability `density`%, with labels 0-9.
    static func images(_ k: Case) -> LabeledImages {
        var r = TestRandom(seed: k.seed ^ 0xDA7A)
        let pixels = (0..<k.imageCount * k.rows * k.columns).map { _ in
            r.int(below: 100) < k.density ? UInt8(1 + r.int(below: 255)) : 0
        }
        return LabeledImages(count: k.imageCount, rows: k.rows, columns: k.columns, pixels: pixels,
                             labels: (0..<k.imageCount).map { _ in UInt8(r.int(below: 10)) })
    }

    func check(_ k: Case, kernels: KernelSet) throws {
        let data = Self.images(k)
        let host = Topology.discover()
        func simulated(_ text: String) throws -> Topology { try Topology.simulated(text, hostCPUs: host.usableCPUCount) }
        var c = k.config
        c.workers = 1
        let reference = RunBuilder(kernels: kernels, topology: host).train(c, on: data)
        XCTAssertEqual(reference.outcome.stop, .completed, "\(k)")

        c.workers = k.workers
        let builder = RunBuilder(kernels: kernels, topology: try simulated(k.topology))
        let net = builder.initialNetwork(c, for: data)
        let first = builder.trainer(c, net: net, train: data)
        let stop = first.stopRequest, resumeAt = k.resumeAt
        XCTAssertEqual(first.run { if $0.iteration == resumeAt { stop.set() } }.stop, .interrupted, "\(k)")
        let saved = try TrainingCheckpoint.decode(TrainingCheckpoint(net: net, iteration: k.resumeAt, configuration: c, datasetSHA256: "x",
                                                                     kernels: kernels.variant.rawValue,
                                                                     optimizerState: first.optimizerState).encoded(), path: "mem")
        c.workers = k.resumeWorkers
        let second = RunBuilder(kernels: kernels, topology: try simulated(k.resumeTopology))
            .trainer(c, net: saved.net, train: data, start: saved.iteration, state: saved.optimizerState)
        XCTAssertEqual(second.run().stop, .completed, "\(k)")
        XCTAssertEqual(saved.net.parametersSHA256, reference.net.parametersSHA256, "\(k)")
    }

    func testSameBitsOnSimulatedTopologies() throws {
        let kernels = try KernelSet.best()
        let environment = ProcessInfo.processInfo.environment
        let seeds: [UInt64] = environment["PTRAIN_PROPERTY_SEED"].flatMap(UInt64.init).map { [$0] }
            ?? Array(0..<UInt64(environment["PTRAIN_PROPERTY_CASES"].flatMap(Int.init) ?? 100))
        for seed in seeds { try check(Self.draw(seed: seed), kernels: kernels) }
    }

    /// The cases above really are plans this machine would not make: most have more leads than it
    /// has CPUs, and between them they cover both sampling modes, both encodings and every optimizer.
    func testTheCasesCoverWhatTheyClaim() {
        let cases = (0..<UInt64(24)).map(Self.draw)
        XCTAssertGreaterThanOrEqual(cases.filter { $0.workers > 2 && $0.topology != "1x1" }.count, 12)
        XCTAssertEqual(Set(cases.map(\.config.sampling)), Set(SamplingMode.allCases))
        XCTAssertEqual(Set(cases.map(\.config.input)), [.dense, .sparse])
        XCTAssertEqual(Set(cases.map(\.config.optimizer.kind)), Set(OptimizerKind.allCases))
        XCTAssert(cases.contains { $0.config.hidden.contains { $0 > GEMM.maxKC } }, "a hidden layer whose product with the next layer splits into k-blocks")
        XCTAssert(cases.contains { $0.rows * $0.columns > GEMM.maxKC }, "an input layer that splits into k-blocks")
        XCTAssert(cases.contains { $0.config.sampling == .epoch && $0.resumeAt * $0.config.batchSize % $0.imageCount != 0
                                   && $0.config.iterations * $0.config.batchSize > 2 * $0.imageCount },
                  "a run in epoch mode that crosses epochs and resumes mid-epoch")
    }

    /// `PTRAIN_TOPOLOGY`'s layout: N nodes of C CPUs, planned but not pinned; malformed values name
    /// the variable and the expected form.
    func testSimulatedTopology() throws {
        let t = try Topology.simulated("4x16", hostCPUs: 2)
        XCTAssertEqual(t.nodes.map(\.cpus.count), [16, 16, 16, 16])
        XCTAssertEqual(t.nodes[1].cpus.first, 16)
        XCTAssertEqual(t.simulatedOn, 2)
        let plan = Placement(topology: t, workers: 40, policy: .spread)
        XCTAssertEqual(plan.leadCount, 40)
        XCTAssertFalse(plan.pins)
        XCTAssertFalse(plan.placesMemory)
        XCTAssertTrue(plan.oversubscribed, "40 threads on 2 real CPUs")
        XCTAssertEqual(plan.nodes, [0, 1, 2, 3])
        let real = Placement(topology: Topology(nodes: [.init(id: 0, cpus: [0, 1])]), workers: 2, policy: .spread)
        XCTAssertTrue(real.pins)
        XCTAssertFalse(real.oversubscribed)
        XCTAssertEqual(try Topology.current(environment: [:]), Topology.discover())
        XCTAssertEqual(try Topology.current(environment: ["PTRAIN_TOPOLOGY": "2x3"]).cpuCount, 6)
        for bad in ["4", "4x", "x16", "0x4", "4x0", "-1x4", "65x1", "2x2049", "4x16x2", "four"] {
            XCTAssertThrowsError(try Topology.current(environment: ["PTRAIN_TOPOLOGY": bad]), bad) { error in
                XCTAssert("\(error)".hasPrefix("PTRAIN_TOPOLOGY=\(bad): expected NODESxCPUS"), "\(error)")
            }
        }
    }
}
