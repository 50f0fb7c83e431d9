import ArgumentParser
import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Training

extension PlacementPolicy: ExpressibleByArgument {}
extension SamplingMode: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the TwoLayerNet (the default command).")

    @Option(help: "Worker threads (1-1024, at most the batch size). The result is bitwise identical for every value.")
    var workers = 1

    @Option(help: "Training iterations (the lecture: 10000).")
    var iterations = 10_000

    @Option(name: .customLong("batch-size"), help: "Rows per batch (the lecture: 100).")
    var batchSize = 100

    @Option(help: "Hidden units (the lecture: 100).")
    var hidden = 100

    @Option(name: .customLong("learning-rate"), help: "SGD learning rate (the lecture: 0.1).")
    var learningRate = 0.1

    @Option(help: "Seed for the initial weights and every batch (0 to 2^64-1).")
    var seed: UInt64 = 1

    @Option(help: "How batches are drawn: replacement (the lecture) or epoch (each sample once per epoch).")
    var sampling: SamplingMode = .replacement

    @Option(help: "Worker placement: spread (across NUMA nodes), compact (fill a node first) or none (no pinning).")
    var placement: PlacementPolicy = .spread

    @OptionGroup var dataOptions: DataOptions

    @Flag(help: "Print exactly one JSON object on stdout instead of the summary.")
    var json = false

    func validate() throws {
        guard (1...TrainingConfiguration.maximumWorkers).contains(workers) else {
            throw ValidationError("--workers must be between 1 and \(TrainingConfiguration.maximumWorkers), got \(workers).")
        }
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, got \(iterations).") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        guard workers <= batchSize else {
            throw ValidationError("--workers \(workers) exceeds --batch-size \(batchSize): every worker needs at least one row of the batch; use at most \(batchSize) workers.")
        }
        guard (1...65_536).contains(hidden) else { throw ValidationError("--hidden must be between 1 and 65536, got \(hidden).") }
        guard learningRate > 0, learningRate.isFinite else {
            throw ValidationError("--learning-rate must be a positive number, got \(learningRate).")
        }
    }

    var trainingConfiguration: TrainingConfiguration {
        var c = TrainingConfiguration()
        c.iterations = iterations
        c.batchSize = batchSize
        c.hidden = hidden
        c.learningRate = Float(learningRate)
        c.seed = seed
        c.sampling = sampling
        c.workers = workers
        c.placement = placement
        return c
    }

    func run() throws {
        let kernels = try KernelSet.best()
        let dataset = try dataOptions.load()
        guard batchSize <= dataset.train.count else {
            throw ValidationError("--batch-size \(batchSize) exceeds the \(dataset.train.count) training images of \(dataOptions.sourceDescription).")
        }
        let config = trainingConfiguration
        let shape = config.shape(input: dataset.train.pixelsPerImage, classes: LabeledImages.classCount)
        let net = TwoLayerNet(shape: shape, seed: config.seed)
        let trainer = Trainer(configuration: config, net: net, train: dataset.train, kernels: kernels, topology: Topology.discover())
        let progress = ProgressLine(enabled: isatty(STDERR_FILENO) == 1, batchSize: batchSize)
        let outcome = trainer.run { progress.update($0) }
        progress.finish()
        for warning in outcome.warnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
        if case .diverged(let iteration, let loss) = outcome.stop {
            throw RunError("training diverged: the loss of iteration \(iteration) is \(loss); lower --learning-rate")
        }
        let evaluation = Evaluator.evaluate(net, on: dataset.test, kernels: kernels.functions)
        let report = TrainReport(config: config, learningRate: learningRate, shape: shape, dataset: dataset,
                                 kernels: kernels, outcome: outcome, evaluation: evaluation,
                                 paramsSHA256: net.parametersSHA256)
        print(json ? report.json : report.summary)
    }
}

/// A run-time failure with a one-line message (exit status 1).
struct RunError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}
