import ArgumentParser
import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Training

/// Training time to a test accuracy, ptrain beside numpy and JAX running the same recipe in the
/// same invocation (Benchmarks/reference/mlp_adam.py).
struct TimeToAccuracyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accuracy",
        abstract: "Training time to --target test accuracy (evaluated after each epoch, evaluation time excluded) of the modern recipe, ptrain beside numpy and JAX in the same run.",
        discussion: """
        The recipe: 784-256-256-10 ReLU, He init, Adam (lr 0.001), cosine schedule over --epochs, batch 100, epoch sampling.
        The peers run Benchmarks/reference/mlp_adam.py with $PTRAIN_PYTHON (else python3): numpy at 1 and N BLAS threads (the
        faster counts), and JAX (jax[cpu]) where it imports. Writes time-to-accuracy.json to --output.
        """)

    @Option(help: "Epochs of the recipe (the cosine schedule spans them).")
    var epochs = 20

    @Option(help: "The test accuracy to reach.")
    var target = 0.98

    @Option(help: "ptrain's workers (default: the usable CPUs).")
    var workers: Int?

    @Option(help: "Seed of every run.")
    var seed: UInt64 = 1

    @Flag(help: "Skip numpy and JAX.")
    var noPeers = false

    @Option(help: "Folder for time-to-accuracy.json.")
    var output = "Benchmarks/results"

    struct Epoch: Codable {
        var epoch: Int
        var train_seconds: Double
        var test_accuracy: Double
    }

    struct Run: Codable {
        var framework: String
        var threads: String
        var epochs: [Epoch]
        var seconds_to_target: Double?
        var epoch_of_target: Int?
        var eval_seconds: Double
    }

    typealias Document = Recorded<Results>

    struct Results: Codable {
        var kernels: String
        var target: Double
        var runs: [Run]
        /// The fastest peer's time to the target over ptrain's (above 1: ptrain is faster).
        var ptrain_speedup_over_fastest_peer: Double?
    }

    func run() throws {
        let kernels = try KernelSet.best()
        let topology = Topology.discover()
        let mnist = try MNIST.loadEmbedded()
        let n = workers ?? topology.usableCPUCount
        print("time to \(target) test accuracy, \(epochs) epochs of the recipe, ptrain on \(n) worker(s), kernels \(kernels.variant.rawValue); \(machineDescription())")
        var runs = [try ptrain(workers: n, kernels: kernels, topology: topology, mnist: mnist)]
        if !noPeers {
            let python = NumpyPeer.python
            let cores = topology.usableCPUCount
            let numpy = Set([1, cores]).sorted().compactMap { peer(python, "numpy", threads: $0) }
            if let best = numpy.min(by: { ($0.seconds_to_target ?? .infinity, $0.epochs.last!.train_seconds) < ($1.seconds_to_target ?? .infinity, $1.epochs.last!.train_seconds) }) {
                runs.append(best)
            } else {
                print("numpy peer: \(python) with numpy not found; skipped")
            }
            if let jax = peer(python, "jax", threads: nil) { runs.append(jax) } else { print("JAX peer: \(python) cannot import jax; skipped") }
        }
        print("\nframework  threads  epoch of target  seconds to target  (training time per epoch, accuracy per epoch)")
        for r in runs {
            let perEpoch = r.epochs.map { String(format: "%.3f", $0.test_accuracy) }.joined(separator: " ")
            print(String(format: "%-9@  %-7@  %15@  %17@  (%.2f s/epoch) %@", r.framework as NSString, r.threads as NSString,
                         (r.epoch_of_target.map(String.init) ?? "not reached") as NSString,
                         (r.seconds_to_target.map { String(format: "%.2f", $0) } ?? "-") as NSString,
                         r.epochs.last!.train_seconds / Double(r.epochs.count), perEpoch as NSString))
        }
        let ptrainTime = runs[0].seconds_to_target
        let fastestPeer = runs.dropFirst().compactMap(\.seconds_to_target).min()
        let speedup = ptrainTime.flatMap { p in fastestPeer.map { $0 / p } }
        if let speedup { print(String(format: "\nptrain reaches %.2f %.2fx faster than the fastest peer", target, speedup)) }
        let document = Document(Results(kernels: kernels.variant.rawValue, target: target, runs: runs,
                                        ptrain_speedup_over_fastest_peer: speedup))
        try document.write(to: output + "/time-to-accuracy.json")
        print("wrote \(output)/time-to-accuracy.json")
    }

    /// The recipe in ptrain, evaluated after every epoch from the serial step; the evaluations'
    /// time is measured and subtracted from the training time.
    func ptrain(workers: Int, kernels: KernelSet, topology: Topology, mnist: MNIST) throws -> Run {
        var c = TrainingConfiguration()
        c.hidden = [256, 256]
        c.activation = .relu
        c.initialization = .he
        c.optimizer.kind = .adam
        c.learningRate = 0.001
        c.schedule.kind = .cosine
        c.sampling = .epoch
        c.seed = seed
        c.workers = workers
        let perEpoch = mnist.train.count / c.batchSize
        c.iterations = perEpoch * epochs
        let builder = RunBuilder(kernels: kernels, topology: topology)
        let net = builder.initialNetwork(c, for: mnist.train)
        let trainer = builder.trainer(c, net: net, train: mnist.train)
        let log = EpochLog()
        let test = mnist.test
        _ = trainer.run { report in
            guard report.iteration % perEpoch == 0 else { return }
            let start = ContinuousClock.now
            let accuracy = builder.evaluate(net, on: test).accuracy
            log.add(Epoch(epoch: report.iteration / perEpoch, train_seconds: report.elapsedSeconds - log.evalSeconds, test_accuracy: accuracy),
                    evalSeconds: (ContinuousClock.now - start).seconds)
        }
        let reached = log.epochs.first { $0.test_accuracy >= target }
        return Run(framework: "ptrain", threads: String(workers), epochs: log.epochs, seconds_to_target: reached?.train_seconds,
                   epoch_of_target: reached?.epoch, eval_seconds: log.evalSeconds)
    }

    /// One run of Benchmarks/reference/mlp_adam.py, or nil where it cannot run.
    func peer(_ python: String, _ framework: String, threads: Int?) -> Run? {
        let script = repositoryRoot.appendingPathComponent("Benchmarks/reference/mlp_adam.py").path
        let environment = threads.map { ["OPENBLAS_NUM_THREADS": String($0), "OMP_NUM_THREADS": String($0), "MKL_NUM_THREADS": String($0)] } ?? [:]
        guard let out = NumpyPeer.shell([python, script, repositoryRoot.appendingPathComponent("Sources/Dataset/Resources/MNIST").path,
                                         "--framework", framework, "--epochs", String(epochs), "--target", String(target),
                                         "--seed", String(seed)], environment: environment) else { return nil }
        return try? JSONDecoder().decode(Run.self, from: Data(out.utf8))
    }
}

/// The epochs a run has evaluated, written by its serial step only.
final class EpochLog: @unchecked Sendable {
    private(set) var epochs: [TimeToAccuracyBenchmark.Epoch] = []
    private(set) var evalSeconds = 0.0
    func add(_ epoch: TimeToAccuracyBenchmark.Epoch, evalSeconds seconds: Double) {
        epochs.append(epoch)
        evalSeconds += seconds
    }
}
