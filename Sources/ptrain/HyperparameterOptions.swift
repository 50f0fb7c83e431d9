import ArgumentParser
import Parallel
import Training

extension PlacementPolicy: ExpressibleByArgument {}
extension SamplingMode: ExpressibleByArgument {}
extension InputChoice: ExpressibleByArgument {}

/// The options that determine a run's result (shared by `train` and `verify`).
struct HyperparameterOptions: ParsableArguments {
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

    func validate() throws {
        guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, got \(iterations).") }
        guard iterations <= TrainingConfiguration.maximumIterations else {
            throw ValidationError("--iterations must be at most \(TrainingConfiguration.maximumIterations), got \(iterations).")
        }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        guard (1...65_536).contains(hidden) else { throw ValidationError("--hidden must be between 1 and 65536, got \(hidden).") }
        guard learningRate > 0, Float(learningRate).isFinite else {
            throw ValidationError("--learning-rate must be a positive number, got \(learningRate).")
        }
    }

    /// Checks `workers` against the limits (1...1024, at most the batch size).
    func validate(workers: Int, flag: String = "--workers") throws {
        guard (1...TrainingConfiguration.maximumWorkers).contains(workers) else {
            throw ValidationError("\(flag) must be between 1 and \(TrainingConfiguration.maximumWorkers), got \(workers).")
        }
        guard workers <= batchSize else {
            throw ValidationError("\(flag) \(workers) exceeds --batch-size \(batchSize): every worker needs at least one row of the batch; use at most \(batchSize) workers.")
        }
    }

    func configuration(workers: Int, placement: PlacementPolicy) -> TrainingConfiguration {
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
}
