import ArgumentParser
import Checkpoint
import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Training

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove reproducibility: train at each worker count, once with the other layer-one input (dense or sparse) and once split by checkpoint/resume, compare digests.",
        discussion: "Exit status 0 when every digest is equal, 1 on any mismatch.")

    @Option(help: "Comma-separated worker counts to compare.")
    var workers = "1,2,8"

    @OptionGroup var hyper: HyperparameterOptions
    @OptionGroup var dataOptions: DataOptions

    var workerCounts: [Int] { workers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        let counts = workerCounts
        guard !counts.isEmpty, counts.count == workers.split(separator: ",").count else {
            throw ValidationError("--workers must be a comma-separated list of worker counts, e.g. 1,2,8; got \"\(workers)\".")
        }
        for n in counts { try hyper.validate(workers: n) }
    }

    func run() throws {
        let kernels = try KernelSet.best()
        let dataset = try dataOptions.load()
        guard hyper.batchSize <= dataset.train.count else {
            throw ValidationError("--batch-size \(hyper.batchSize) exceeds the \(dataset.train.count) training images.")
        }
        let builder = RunBuilder(kernels: kernels, topology: try Topology.current())
        try hyper.validate(trainCount: dataset.train.count)
        let base = hyper.configuration(workers: 1, placement: .spread, trainCount: dataset.train.count)
        let total = base.iterations
        let spec = builder.spec(base, for: dataset.train)
        func fresh() -> Network { builder.initialNetwork(base, for: dataset.train) }
        // The input `auto` picks, resolved once (between the densities it does not decide, it times
        // both, for the largest worker count compared), so every run below but one uses it and
        // that one the other.
        let trial = InputTrial(configuration: hyper.configuration(workers: workerCounts.max() ?? 1, placement: .spread, trainCount: dataset.train.count),
                               kernels: kernels, topology: builder.topology)
        let chosen = try? InputChoice.auto.resolve(for: dataset.train, trial: trial).get()
        let usual = chosen.flatMap { InputChoice(rawValue: $0.rawValue) } ?? .auto
        /// Trains `net` (and `state`) from `start` with `workers` until iteration `end` of the
        /// whole run (a stop requested after iteration `end`, as a SIGINT would: the schedule is
        /// the whole run's); returns the trainer, whose optimizer state a checkpoint saves.
        func train(_ workers: Int, from net: Network, start: Int, until end: Int, state: OptimizerState? = nil,
                   input: InputChoice? = nil) throws -> Trainer {
            var config = hyper.configuration(workers: workers, placement: .spread, trainCount: dataset.train.count)
            config.input = input ?? usual
            let trainer = builder.trainer(config, net: net, train: dataset.train, start: start, state: state)
            let stop = trainer.stopRequest
            let outcome = trainer.run { if $0.iteration == end { stop.set() } }
            guard outcome.stop == .completed || (outcome.stop == .interrupted && outcome.iterationsDone == end) else {
                throw RunError("training stopped: \(outcome.stop)")
            }
            return trainer
        }
        print("verify: \(spec.description), \(total) iterations, batch \(hyper.batchSize), seed \(hyper.seed), \(hyper.samplingMode.rawValue) sampling, kernels \(kernels.variant.rawValue)")
        var digests: [(String, String)] = []
        for n in workerCounts {
            let net = fresh()
            _ = try train(n, from: net, start: 0, until: total)
            digests.append(("workers \(n)", net.parametersSHA256))
            print("  \(digests.last!.0.padding(toLength: 44, withPad: " ", startingAt: 0)) \(digests.last!.1)")
        }
        // The input `auto` did not choose (sparse rows or dense bytes), where the data allows it.
        let other: InputChoice? = chosen == .sparse ? .dense : (SparseImages.supports(dataset.train) ? .sparse : nil)
        if let other {
            let net = fresh()
            _ = try train(workerCounts.first!, from: net, start: 0, until: total, input: other)
            digests.append(("workers \(workerCounts.first!), --input \(other.rawValue)", net.parametersSHA256))
            print("  \(digests.last!.0.padding(toLength: 44, withPad: " ", startingAt: 0)) \(digests.last!.1)")
        }
        // Split: the first worker count up to the middle, a checkpoint round trip, the last count to the end.
        let (first, last) = (workerCounts.first!, workerCounts.last!)
        let middle = total / 2
        let net = fresh()
        var resumed = net
        var start = 0
        var state: OptimizerState? = nil
        if middle > 0 {
            let trainer = try train(first, from: net, start: 0, until: middle)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ptrain-verify-\(getpid()).safetensors").path
            defer { unlink(path) }
            try TrainingCheckpoint(net: net, iteration: middle, configuration: trainer.configuration, datasetSHA256: dataset.sha256,
                                   kernels: kernels.variant.rawValue, optimizerState: trainer.optimizerState).write(to: path)
            let saved = try TrainingCheckpoint.read(path)
            try saved.checkResumable(as: trainer.configuration, datasetSHA256: dataset.sha256, input: spec.input, path: path)
            resumed = saved.net
            start = saved.iteration
            state = saved.optimizerState
        }
        _ = try train(last, from: resumed, start: start, until: total, state: state)
        digests.append(("workers \(first), resume at \(middle), workers \(last)", resumed.parametersSHA256))
        print("  \(digests.last!.0.padding(toLength: 44, withPad: " ", startingAt: 0)) \(digests.last!.1)")
        if Set(digests.map(\.1)).count == 1 {
            print("verify: all \(digests.count) runs end with identical parameters")
        } else {
            print("verify: MISMATCH: the runs above differ")
            throw ExitCode.failure
        }
    }
}
