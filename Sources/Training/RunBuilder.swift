import Dataset
import Kernels
import Model
import Parallel

/// Builds networks, trainers and evaluations the same way for every caller — `ptrain train`,
/// `verify` and `eval`, the benchmarks, and a program that trains from Swift — so that what a
/// benchmark times and what `verify` proves is exactly the run a user gets.
///
/// ## Training from Swift
///
/// Depend on the `PTrain` library product by path (`.package(name: "ptrain", path: ...)`), then:
///
/// ```swift
/// import Dataset
/// import Kernels
/// import Training
///
/// let kernels = try KernelSet.best()      // avx512, avx2 or baseline: what this CPU runs
/// let mnist = try MNIST.loadEmbedded()    // or MNIST.load(directory:) for any IDX folder
/// var config = TrainingConfiguration()    // the lecture's run; change what you need
/// config.hidden = [128, 64]
/// config.activation = .relu
/// config.workers = 2                      // any worker count gives the same bits
/// let builder = RunBuilder(kernels: kernels)
/// let (net, outcome) = builder.train(config, on: mnist.train)
/// print(builder.evaluate(net, on: mnist.test).accuracy, outcome.trainSeconds, net.parametersSHA256)
/// ```
///
/// `trainer(_:net:train:start:state:)` gives the loop itself, to report progress or to stop and
/// checkpoint it (`TrainingCheckpoint`). Examples/TrainFromSwift is this as a package, built in CI.
public struct RunBuilder: Sendable {
    /// The kernel variant every trainer and evaluation of this builder uses.
    public let kernels: KernelSet
    /// The CPUs and NUMA nodes its trainers place workers on.
    public let topology: Topology

    /// A builder for `kernels` (usually `KernelSet.best()`) on `topology` (this machine's by default).
    public init(kernels: KernelSet, topology: Topology = .discover()) {
        self.kernels = kernels
        self.topology = topology
    }

    /// The network `config` trains on `data`: its input width and class count come from the data.
    public func spec(_ config: TrainingConfiguration, for data: LabeledImages) -> NetworkSpec {
        config.spec(input: data.pixelsPerImage, classes: LabeledImages.classCount)
    }

    /// The run's initial network (`Network.init(spec:seed:)`).
    public func initialNetwork(_ config: TrainingConfiguration, for data: LabeledImages) -> Network {
        Network(spec: spec(config, for: data), seed: config.seed)
    }

    /// A trainer that continues `net` (and the optimizer's `state`, nil for a new run) from
    /// iteration `start` to `config.iterations`.
    public func trainer(_ config: TrainingConfiguration, net: Network, train data: LabeledImages, start: Int = 0,
                        state: OptimizerState? = nil) -> Trainer {
        Trainer(configuration: config, net: net, train: data, kernels: kernels, topology: topology, startIteration: start,
                optimizerState: state)
    }

    /// One rank of a run across `collective`'s processes: `trainer`'s run, with this rank's share of
    /// every iteration (`RankPlan`); every rank ends with `trainer`'s parameters.
    public func rankTrainer(_ config: TrainingConfiguration, net: Network, train data: LabeledImages, collective: any Collective,
                            start: Int = 0, state: OptimizerState? = nil) -> RankTrainer {
        RankTrainer(configuration: config, net: net, train: data, kernels: kernels, topology: topology, collective: collective,
                    startIteration: start, optimizerState: state)
    }

    /// Trains a fresh network for `config` on `data` to the end.
    ///
    /// - Returns: the trained network and the run's outcome (losses, time, where the time went).
    public func train(_ config: TrainingConfiguration, on data: LabeledImages) -> (net: Network, outcome: TrainingOutcome) {
        let net = initialNetwork(config, for: data)
        return (net, trainer(config, net: net, train: data).run())
    }

    /// Accuracy and mean cross-entropy of `net` on `data` (usually the test set), with this
    /// builder's kernels: the same forward pass as training.
    public func evaluate(_ net: Network, on data: LabeledImages) -> Evaluation {
        Evaluator.evaluate(net, on: data, kernels: kernels.functions)
    }
}
