import Foundation
import ArgumentParser
import Kernels
import Model
import Parallel
import Training

extension PlacementPolicy: ExpressibleByArgument {}
extension SamplingMode: ExpressibleByArgument {}
extension InputChoice: ExpressibleByArgument {}
extension ActivationKind: ExpressibleByArgument {}
extension Initialization: ExpressibleByArgument {}

/// The options that determine a run's result (shared by `train` and `verify`).
struct HyperparameterOptions: ParsableArguments {
    @Option(help: "Training iterations (the lecture: 10000).")
    var iterations = 10_000

    @Option(name: .customLong("batch-size"), help: "Rows per batch (the lecture: 100).")
    var batchSize = 100

    @Option(help: ArgumentHelp("Hidden layer widths, input side first, comma-separated: 100 is the lecture's net, 512,256 two hidden layers (1-8 layers, 1-8192 units each).", valueName: "widths"))
    var hidden = "100"

    @Option(help: "Every hidden layer's activation: sigmoid (the lecture), relu or tanh.")
    var activation: ActivationKind = .sigmoid

    @Option(help: "Initial weights: lecture (0.01·N(0,1)), he (√(2/fan_in)·N(0,1)) or glorot (√(2/(fan_in+fan_out))·N(0,1)); biases start at 0.")
    var `init`: Initialization = .lecture

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
        _ = try hiddenWidths()
        guard learningRate > 0, Float(learningRate).isFinite else {
            throw ValidationError("--learning-rate must be a positive number, got \(learningRate).")
        }
    }

    /// The widths of `--hidden`, or a usage error that says what is wrong with the list.
    func hiddenWidths() throws -> [Int] {
        let parts = hidden.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.contains("") {
            throw ValidationError("--hidden \"\(hidden)\" has an empty width (a stray comma?); give the widths separated by commas, e.g. --hidden 512,256.")
        }
        let widths = try parts.map { part -> Int in
            guard let width = Int(part) else {
                throw ValidationError("--hidden \"\(hidden)\": \"\(part)\" is not a whole number; give the widths separated by commas, e.g. --hidden 512,256.")
            }
            return width
        }
        if let problem = NetworkSpec.problem(hidden: widths) { throw ValidationError("--hidden \(hidden): \(problem).") }
        return widths
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
        c.hidden = (try? hiddenWidths()) ?? []
        c.activation = activation
        c.initialization = `init`
        c.learningRate = Float(learningRate)
        c.seed = seed
        c.sampling = sampling
        c.workers = workers
        c.placement = placement
        return c
    }
}
