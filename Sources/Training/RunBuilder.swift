import Dataset
import Kernels
import Model
import Parallel

/// Builds networks, trainers and evaluations the same way for every caller — `ptrain train`,
/// `verify` and `eval`, and the benchmarks — so that what a benchmark times and what `verify`
/// proves is exactly the run a user gets.
public struct RunBuilder: Sendable {
    public let kernels: KernelSet
    public let topology: Topology

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

    /// Trains a fresh network for `config` on `data` to the end; returns it with the outcome.
    public func train(_ config: TrainingConfiguration, on data: LabeledImages) -> (net: Network, outcome: TrainingOutcome) {
        let net = initialNetwork(config, for: data)
        return (net, trainer(config, net: net, train: data).run())
    }

    /// Test-set accuracy and loss of `net` with this run's kernels.
    public func evaluate(_ net: Network, on data: LabeledImages) -> Evaluation {
        Evaluator.evaluate(net, on: data, kernels: kernels.functions)
    }
}
