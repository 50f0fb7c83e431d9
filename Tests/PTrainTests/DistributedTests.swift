import Checkpoint
import Dataset
import Kernels
import Model
import Parallel
import TestSupport
import Training
import XCTest

/// The contract across processes (docs/reproducibility.md, "Across processes"): R ranks of T
/// workers end with the single-process bits. The ranks run as threads of this process
/// (`ThreadCollective`); CI repeats the check with real processes under mpirun (Tests/MPI/run.sh).
final class DistributedTests: XCTestCase {
    static let mnist = try! MNIST.loadEmbedded()

    /// Rows and parameters are dealt out whole and exactly once, for shapes whose items do and do
    /// not divide among the ranks (more ranks than parameter items leaves some ranks none).
    func testRankPlanCoversTheBatchAndTheParametersOnce() {
        let specs = [NetworkSpec(input: 784, hidden: [100], output: 10, activation: .sigmoid, initialization: .lecture),
                     NetworkSpec(input: 784, hidden: [256, 256], output: 10, activation: .relu, initialization: .he),
                     NetworkSpec(input: 30, hidden: [7], output: 3, activation: .tanh, initialization: .glorot)]
        for spec in specs {
            let layout = ParameterLayout(spec)
            for (batch, ranks) in [(100, 1), (100, 2), (100, 3), (37, 5), (64, 64)] {
                let plan = RankPlan(spec: spec, batchSize: batch, ranks: ranks)
                XCTAssertEqual(plan.rows.map(\.count).reduce(0, +), batch)
                XCTAssertEqual(plan.rows.first?.lowerBound, 0)
                for r in 1..<ranks { XCTAssertEqual(plan.rows[r].lowerBound, plan.rows[r - 1].upperBound) }
                XCTAssertEqual(plan.slices.flatMap { $0 }, ParameterSlice.blocks(spec), "items in order, each once")
                var covered = [Int](repeating: 0, count: layout.count)
                for range in plan.parameterRanges.flatMap({ $0 }) { for i in range { covered[i] += 1 } }
                XCTAssertEqual(Set(covered), [1], "\(spec), B \(batch), R \(ranks)")
                XCTAssertEqual(plan.parameterCounts.reduce(0, +), layout.count)
                XCTAssertEqual(plan.rowCounts.reduce(0, +), batch * plan.floatsPerRow)
            }
        }
        // The lecture's net on 2 ranks: about half of the work each.
        let lecture = RankPlan(spec: specs[0], batchSize: 100, ranks: 2)
        XCTAssertEqual(lecture.parameterCounts[0], 7 * 56 * 100, "W1's first 7 items of 14")
    }

    func run(_ config: TrainingConfiguration, ranks: Int, data: LabeledImages? = nil,
             report: @escaping @Sendable (Int, IterationReport) throws -> Void = { _, _ in },
             register: @escaping @Sendable (Int, RankTrainer) -> Void = { _, _ in }) throws -> [(Network, RankTrainer, TrainingOutcome)] {
        let kernels = try KernelSet.best()
        let data = data ?? Self.mnist.train
        let builder = RunBuilder(kernels: kernels, topology: .discover())
        return onRankThreads(ThreadCollective.group(size: ranks)) { collective in
            let net = builder.initialNetwork(config, for: data)
            let trainer = builder.rankTrainer(config, net: net, train: data, collective: collective)
            register(collective.rank, trainer)
            let outcome = trainer.run { try report(collective.rank, $0) }
            trainer.collectOptimizerState()  // what the CLI does before rank 0 writes a checkpoint
            return (net, trainer, outcome)
        }
    }

    func reference(_ config: TrainingConfiguration, data: LabeledImages? = nil) throws -> String {
        var c = config
        c.workers = 1
        return RunBuilder(kernels: try KernelSet.best(), topology: .discover()).train(c, on: data ?? Self.mnist.train).net.parametersSHA256
    }

    /// The lecture's net (sparse input on MNIST) and a deeper ReLU net with Adam on both inputs:
    /// 1 to 4 ranks of 1 or 2 workers, uneven splits of the batch included, every rank ends with the
    /// single-process digest, and every rank saw the same losses.
    func testSameBitsForAnyRankAndWorkerCount() throws {
        var lecture = TrainingConfiguration()
        lecture.iterations = 60
        var deep = TrainingConfiguration()
        deep.iterations = 40
        deep.hidden = [64, 48]
        deep.activation = .relu
        deep.initialization = .he
        deep.optimizer.kind = .adam
        deep.learningRate = 0.001
        deep.batchSize = 50
        deep.sampling = .epoch
        var dense = deep
        dense.input = .dense
        for (name, config) in [("lecture", lecture), ("784-64-48-10 adam", deep), ("784-64-48-10 adam, dense", dense)] {
            let expected = try reference(config)
            for (ranks, workers) in [(1, 1), (2, 1), (3, 1), (2, 2), (4, 2)] {
                var c = config
                c.workers = workers
                let results = try run(c, ranks: ranks)
                for (rank, (net, _, outcome)) in results.enumerated() {
                    XCTAssertEqual(outcome.stop, .completed, "\(name), R \(ranks) T \(workers), rank \(rank)")
                    XCTAssertEqual(outcome.iterationsDone, config.iterations)
                    XCTAssertEqual(net.parametersSHA256, expected, "\(name), R \(ranks) T \(workers), rank \(rank)")
                    XCTAssertEqual(outcome.losses, results[0].2.losses)
                }
            }
        }
    }

    /// A stop requested on one rank only stops every rank after the same iteration; rank 0's
    /// checkpoint (after `collectOptimizerState`) resumed on another rank count gives the
    /// uninterrupted bits, and so does a resume in one process.
    func testStopOnOneRankThenResumeOnAnotherRankCount() throws {
        var c = TrainingConfiguration()
        c.iterations = 50
        c.hidden = [40, 30]
        c.activation = .tanh
        c.optimizer.kind = .momentum
        c.learningRate = 0.05
        let expected = try reference(c)
        let stops = StopBox()
        let first = try run(c, ranks: 3) { rank, r in
            if rank == 2 && r.iteration == 17 { stops.trainer(2)?.stopRequest.set() }
        } register: { stops.set($0, $1) }
        for (_, trainer, outcome) in first {
            XCTAssertEqual(outcome.stop, .interrupted)
            XCTAssertEqual(outcome.iterationsDone, 17, "every rank stops after the iteration in which one was asked to")
            XCTAssertEqual(trainer.iteration, 17)
        }
        let (net, trainer, _) = first[0]
        let saved = try TrainingCheckpoint.decode(TrainingCheckpoint(net: net, iteration: 17, configuration: c, datasetSHA256: "x",
                                                                     kernels: "k", optimizerState: trainer.optimizerState).encoded(), path: "mem")
        let builder = RunBuilder(kernels: try KernelSet.best(), topology: .discover())
        let config = c
        let resumed = onRankThreads(ThreadCollective.group(size: 2)) { collective in
            let net = Network(spec: saved.net.spec)
            net.parameters.pointer.update(from: saved.net.parameters.pointer, count: net.layout.count)
            let state = OptimizerState(slots: saved.optimizerState.slots, parameterCount: saved.optimizerState.parameterCount)
            state.buffer.pointer.update(from: saved.optimizerState.buffer.pointer, count: state.buffer.count)
            var rc = config
            rc.workers = 2
            let outcome = builder.rankTrainer(rc, net: net, train: Self.mnist.train, collective: collective, start: 17, state: state).run()
            return (net.parametersSHA256, outcome.stop)
        }
        for (digest, stop) in resumed {
            XCTAssertEqual(stop, .completed)
            XCTAssertEqual(digest, expected)
        }
        let single = builder.trainer(c, net: saved.net, train: Self.mnist.train, start: 17, state: saved.optimizerState)
        XCTAssertEqual(single.run().stop, .completed)
        XCTAssertEqual(saved.net.parametersSHA256, expected)
    }

    /// A rank whose report fails (a checkpoint it cannot write, say) ends the run on every rank
    /// after that iteration, so no rank waits for it in a later exchange.
    func testAFailingRankStopsEveryRank() throws {
        var c = TrainingConfiguration()
        c.iterations = 30
        let results = try run(c, ranks: 3) { rank, r in
            if rank == 1 && r.iteration == 9 { throw RunFailure() }
        }
        for (rank, (_, _, outcome)) in results.enumerated() {
            XCTAssertEqual(outcome.iterationsDone, 9, "rank \(rank)")
            guard case .failed(let message) = outcome.stop else { return XCTFail("rank \(rank): \(outcome.stop)") }
            XCTAssertEqual(message.contains("another rank failed"), rank != 1, message)
        }
    }
}

private struct RunFailure: Error {}

/// The trainers of a run, for a report closure that stops one of them.
private final class StopBox: @unchecked Sendable {
    private let lock = NSLock()
    private var trainers: [Int: RankTrainer] = [:]
    func set(_ rank: Int, _ trainer: RankTrainer) { lock.lock(); trainers[rank] = trainer; lock.unlock() }
    func trainer(_ rank: Int) -> RankTrainer? { lock.lock(); defer { lock.unlock() }; return trainers[rank] }
}
