import ArgumentParser
import Foundation
import Kernels
import Model
import Parallel
import Training

extension PlacementPolicy: ExpressibleByArgument {}
extension SamplingMode: ExpressibleByArgument {}
extension InputChoice: ExpressibleByArgument {}
extension ActivationKind: ExpressibleByArgument {}
extension Initialization: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}

/// The options that determine a run's result (shared by `train` and `verify`).
struct HyperparameterOptions: ParsableArguments {
    @Option(help: "Training iterations (the lecture: 10000), or give --epochs.")
    var iterations: Int?

    @Option(help: "Training epochs instead of --iterations: ⌈epochs·N/batch⌉ iterations for N training images; implies --sampling epoch unless --sampling is given.")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Rows per batch (the lecture: 100).")
    var batchSize = 100

    @Option(help: ArgumentHelp("Hidden layer widths, input side first, comma-separated: 100 is the lecture's net, 512,256 two hidden layers (1-8 layers, 1-8192 units each).", valueName: "widths"))
    var hidden = "100"

    @Option(help: "Every hidden layer's activation: sigmoid (the lecture), relu or tanh.")
    var activation: ActivationKind = .sigmoid

    @Option(help: "Initial weights: lecture (0.01·N(0,1)), he (√(2/fan_in)·N(0,1)) or glorot (√(2/(fan_in+fan_out))·N(0,1)); biases start at 0.")
    var `init`: Initialization = .lecture

    @Option(help: "The update rule: sgd (the lecture), momentum, nesterov, adam or adamw.")
    var optimizer: OptimizerKind = .sgd

    @Option(name: .customLong("learning-rate"), help: "The base learning rate of every optimizer and schedule (the lecture's SGD: 0.1; Adam usually 0.001).")
    var learningRate = 0.1

    @Option(help: "μ of momentum and nesterov, in [0, 1).")
    var momentum = 0.9

    @Option(help: "Adam's β1, in [0, 1).")
    var beta1 = 0.9

    @Option(help: "Adam's β2, in [0, 1).")
    var beta2 = 0.999

    @Option(help: "Adam's ε, above 0.")
    var epsilon = 1e-8

    @Option(name: .customLong("weight-decay"), help: "λ ≥ 0: L2 (added to the gradient) for sgd, momentum, nesterov and adam; decoupled for adamw.")
    var weightDecay = 0.0

    @Option(help: "The learning rate over the run: constant (the lecture), step (× --decay-factor every --decay-every iterations) or cosine (to 0 at the last iteration).")
    var schedule: ScheduleKind = .constant

    @Option(help: "Iterations W of linear warmup before the schedule starts: iteration k < W uses the rate·(k+1)/W.")
    var warmup = 0

    @Option(name: .customLong("decay-every"), help: "Iterations between the step schedule's decays.")
    var decayEvery: Int?

    @Option(name: .customLong("decay-factor"), help: "The step schedule's factor, in (0, 1] (default 0.1).")
    var decayFactor: Double?

    @Option(help: "Seed for the initial weights and every batch (0 to 2^64-1).")
    var seed: UInt64 = 1

    @Option(help: "How batches are drawn: replacement (the lecture; the default with --iterations) or epoch (each sample once per epoch; the default with --epochs).")
    var sampling: SamplingMode?

    /// The lecture's 10,000 iterations when neither --iterations nor --epochs is given.
    static let defaultIterations = 10_000

    func validate() throws {
        if let iterations {
            guard epochs == nil else { throw ValidationError("--iterations and --epochs both set the run's length; give one of them.") }
            guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, got \(iterations).") }
            guard iterations <= TrainingConfiguration.maximumIterations else {
                throw ValidationError("--iterations must be at most \(TrainingConfiguration.maximumIterations), got \(iterations).")
            }
        }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs).") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        _ = try hiddenWidths()
        guard learningRate > 0, Float(learningRate).isFinite else {
            throw ValidationError("--learning-rate must be a positive number, got \(learningRate).")
        }
        for (flag, value) in [("--momentum", momentum), ("--beta1", beta1), ("--beta2", beta2)] where !(value >= 0 && value < 1) {
            throw ValidationError("\(flag) must be at least 0 and below 1, got \(value).")
        }
        guard epsilon > 0, Float(epsilon) > 0, Float(epsilon).isFinite else {
            throw ValidationError("--epsilon must be a positive number representable in Float32, got \(epsilon).")
        }
        guard weightDecay >= 0, Float(weightDecay).isFinite else {
            throw ValidationError("--weight-decay must be 0 or a positive number, got \(weightDecay).")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, got \(warmup).") }
        if schedule == .step {
            guard let decayEvery else { throw ValidationError("--schedule step needs --decay-every N, the iterations between decays.") }
            guard decayEvery >= 1 else { throw ValidationError("--decay-every must be at least 1, got \(decayEvery).") }
        } else if decayEvery != nil || decayFactor != nil {
            throw ValidationError("--decay-every and --decay-factor belong to --schedule step; this run's schedule is \(schedule.rawValue).")
        }
        if let decayFactor, !(decayFactor > 0 && decayFactor <= 1) {
            throw ValidationError("--decay-factor must be above 0 and at most 1, got \(decayFactor).")
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

    /// The run's iterations on a training set of `trainCount` images: --iterations, or
    /// ⌈epochs·trainCount/batch⌉, or the lecture's 10,000.
    func totalIterations(trainCount: Int) -> Int {
        if let epochs { return (epochs * trainCount + batchSize - 1) / batchSize }
        return iterations ?? Self.defaultIterations
    }

    /// The run's length when it does not depend on the data (no --epochs), for checks made before loading it.
    var iterationsWithoutData: Int? { epochs == nil ? (iterations ?? Self.defaultIterations) : nil }

    /// --sampling, or epoch when the run is given in --epochs, else replacement (the lecture's).
    var samplingMode: SamplingMode { sampling ?? (epochs != nil ? .epoch : .replacement) }

    /// Checks the run's length once the training set is known (--epochs can exceed the limit).
    func validate(trainCount: Int) throws {
        let total = totalIterations(trainCount: trainCount)
        guard total <= TrainingConfiguration.maximumIterations else {
            throw ValidationError("--epochs \(epochs ?? 0) make \(total) iterations of batch \(batchSize), above the limit of \(TrainingConfiguration.maximumIterations); train fewer epochs.")
        }
        if warmup > 0 && warmup >= total {
            throw ValidationError("--warmup \(warmup) is not shorter than the run (\(total) iterations); use a shorter warmup.")
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

    func configuration(workers: Int, placement: PlacementPolicy, trainCount: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.iterations = totalIterations(trainCount: trainCount)
        c.batchSize = batchSize
        c.hidden = (try? hiddenWidths()) ?? []
        c.activation = activation
        c.initialization = `init`
        c.learningRate = Float(learningRate)
        c.optimizer.kind = optimizer
        c.optimizer.momentum = Float(momentum)
        c.optimizer.beta1 = Float(beta1)
        c.optimizer.beta2 = Float(beta2)
        c.optimizer.epsilon = Float(epsilon)
        c.optimizer.weightDecay = Float(weightDecay)
        c.schedule.kind = schedule
        c.schedule.warmup = warmup
        c.schedule.decayEvery = decayEvery ?? 0
        if let decayFactor { c.schedule.decayFactor = Float(decayFactor) }
        c.seed = seed
        c.sampling = samplingMode
        c.workers = workers
        c.placement = placement
        return c
    }
}
