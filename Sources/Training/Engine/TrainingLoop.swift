import Model
import Parallel

/// What the CLI drives: the single-process engine (`Trainer`) or one rank of a run across
/// processes (`RankTrainer`). Both end with the same parameters, bit for bit.
public protocol TrainingLoop: AnyObject, Sendable {
    var configuration: TrainingConfiguration { get }
    var net: Network { get }
    var placement: Placement { get }
    /// How layer 1 reads the pixels in this process.
    var input: InputEncoding { get }
    var optimizerState: OptimizerState { get }
    var stopRequest: StopFlag { get }
    /// Iterations done, including those before a resume.
    var iteration: Int { get }
    /// Whether this process writes the run's files and prints its report: the only process, or
    /// rank 0 of several.
    var isPrimary: Bool { get }
    /// Makes `optimizerState` whole in this process (collective across ranks; nothing to do in one process).
    func collectOptimizerState()
    /// Trains to the configured iteration count or a stop; `report` runs after every iteration's update.
    func run(trace: Range<Int>?, report: @escaping @Sendable (IterationReport) throws -> Void) -> TrainingOutcome
}

extension Trainer: TrainingLoop {
    public var isPrimary: Bool { true }
    public func collectOptimizerState() {}
}
