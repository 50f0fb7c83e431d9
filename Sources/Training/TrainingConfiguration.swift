import Kernels
import Model
import Parallel

/// Everything that determines a run's result, plus how it is executed (workers, placement),
/// which by the determinism contract does not change the result.
public struct TrainingConfiguration: Equatable, Sendable {
    /// The lecture: 10,000 iterations.
    public var iterations = 10_000
    /// The lecture: 100 rows per batch.
    public var batchSize = 100
    /// The hidden layers' widths: the lecture's one layer of 100.
    public var hidden = [100]
    /// The hidden layers' activation: the lecture's sigmoid.
    public var activation: ActivationKind = .sigmoid
    /// The lecture's 0.01·N(0, 1).
    public var initialization: Initialization = .lecture
    /// The lecture's SGD step, 0.1: the base rate of every optimizer and schedule.
    public var learningRate: Float = 0.1
    /// The update rule and its hyperparameters: the lecture's plain SGD.
    public var optimizer = OptimizerSettings()
    /// How the learning rate moves over the run: the lecture's constant rate.
    public var schedule = LearningRateSchedule()
    /// The default seed is fixed so that two plain runs agree.
    public var seed: UInt64 = 1
    /// How batches draw samples: the lecture's draw with replacement, or each sample once per epoch.
    public var sampling: SamplingMode = .replacement
    /// Worker threads; does not change the result.
    public var workers = 1
    /// Where workers are pinned (`--placement`); does not change the result.
    public var placement: PlacementPolicy = .spread
    /// How layer 1 reads the pixels; does not change the result (docs/kernels.md).
    public var input: InputChoice = .auto

    /// The most workers a run accepts: enough for any one machine this engine targets, and a bound
    /// on threads created by a typo.
    public static let maximumWorkers = 1024

    /// The most iterations a run accepts: the work queue numbers its phases with 32 bits, at most
    /// two per iteration (one for a sparse input), and compares them as signed 32-bit differences, so 2·10⁹ phases stay below 2³¹
    /// (about 2 days of the default run on 2 workers at 160 µs per iteration).
    public static let maximumIterations = 1_000_000_000

    /// The lecture's run: 784-100-10 sigmoid, SGD 0.1, batch 100, 10,000 iterations, seed 1, one worker.
    public init() {}

    /// The network for data of `input` values per sample and `classes` classes.
    public func spec(input: Int, classes: Int) -> NetworkSpec {
        NetworkSpec(input: input, hidden: hidden, output: classes, activation: activation, initialization: initialization)
    }

    /// The update rule of this run (`optimizer` with `learningRate` and `schedule`).
    public var update: any ParameterUpdate { optimizer.rule(learningRate: learningRate, schedule: schedule) }
}
