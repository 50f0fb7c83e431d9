import Dataset
import Foundation
import Kernels
import Model
import Training

/// The end-of-run report: a short human summary, or one JSON object with `--json`.
struct TrainReport: Encodable {
    var test_accuracy: Double
    var test_loss: Double
    /// The training loss of the run's last iteration (resuming a complete run: the checkpoint's).
    var final_loss: Double
    var iterations: Int
    /// Iterations · batch size / training images.
    var epochs: Double
    var optimizer: String
    var schedule: String
    var batch_size: Int
    /// Input width, hidden widths, classes: [784, 100, 10] for the lecture.
    var layers: [Int]
    var activation: String
    var `init`: String
    var learning_rate: Double
    var seed: UInt64
    var workers: Int
    /// Processes that trained together (mpirun's -n; 1 without MPI), each with `workers` threads.
    var ranks: Int
    /// Under mpirun: bytes each rank sends per iteration in the row and parameter exchanges
    /// (`RankPlan.bytesSent`), in rank order; absent without MPI.
    var bytes_sent_per_iteration: [Int]?
    var placement: String
    var sampling: String
    var kernels: String
    /// How layer 1 read the pixels: "dense" or "sparse".
    var input: String
    var train_seconds: Double
    var samples_per_second: Double
    var params_sha256: String
    var dataset: String
    var dataset_sha256: String
    /// The losses of the first and last iteration this process trained (both `final_loss` when it
    /// trained none).
    var losses_first_last: [Double]
    /// Seconds per worker in each phase (see `PhaseTimes`).
    var time_split: PhaseTimes

    init(config: TrainingConfiguration, learningRate: Double, spec: NetworkSpec, dataset: MNIST, kernels: KernelSet,
         input: InputEncoding, ranks: RankPlan?, outcome: TrainingOutcome, lastLoss: Float?, evaluation: Evaluation, paramsSHA256: String) {
        test_accuracy = evaluation.accuracy
        test_loss = evaluation.loss
        final_loss = Double(lastLoss ?? .nan)
        iterations = outcome.iterationsDone
        epochs = Double(outcome.iterationsDone) * Double(config.batchSize) / Double(dataset.train.count)
        optimizer = config.optimizer.kind.rawValue
        schedule = config.schedule.kind.rawValue
        batch_size = config.batchSize
        layers = spec.widths
        activation = spec.activation.rawValue
        self.`init` = spec.initialization.rawValue
        learning_rate = learningRate
        seed = config.seed
        workers = config.workers
        self.ranks = ranks?.ranks ?? 1
        bytes_sent_per_iteration = ranks.map { plan in (0..<plan.ranks).map { plan.bytesSent(rank: $0) } }
        placement = config.placement.rawValue
        sampling = config.sampling.rawValue
        self.kernels = kernels.variant.rawValue
        self.input = input.rawValue
        train_seconds = outcome.trainSeconds
        samples_per_second = Double(outcome.losses.count * config.batchSize) / max(outcome.trainSeconds, 1e-9)
        params_sha256 = paramsSHA256
        self.dataset = dataset.source
        dataset_sha256 = dataset.sha256
        losses_first_last = [outcome.losses.first.map(Double.init) ?? final_loss, final_loss]
        time_split = outcome.phases
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    var summary: String {
        """
        trained \(layers.map(String.init).joined(separator: "-")) \(activation) network (\(`init`) init): \(iterations) iterations x batch \(batch_size) (\(format(epochs, 2)) epochs), \(optimizer) lr \(learning_rate) \(schedule), seed \(seed), \(sampling) sampling
        \(ranks > 1 ? "ranks \(ranks) x " : "")workers \(workers) (\(placement)), kernels \(kernels), \(input) input: \(format(train_seconds, 2)) s, \(Int(samples_per_second.rounded())) samples/s
        time per worker: compute \(format(time_split.compute, 2)) s, reduction \(format(time_split.reduction, 2)) s, synchronisation \(format(time_split.synchronisation, 2)) s\(ranks > 1 ? ", exchange \(format(time_split.exchange, 2)) s" : "")
        loss \(format(losses_first_last[0], 4)) -> \(format(final_loss, 4))
        test accuracy \(format(test_accuracy, 4)) (test loss \(format(test_loss, 4)))
        params sha256 \(params_sha256)
        """
    }
}

func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }
