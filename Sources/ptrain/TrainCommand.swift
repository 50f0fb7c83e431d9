import ArgumentParser
import Checkpoint
import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Plotting
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network: the lecture's TwoLayerNet by default, any MLP with --hidden (the default command).",
        discussion: """
        Exit status: 0 done; 1 a file or run-time error (one line on stderr); 64 a usage error; \
        75 stopped by SIGINT/SIGTERM after finishing the current iteration (and writing --checkpoint); \
        128+N killed by a second signal N.
        """)

    @Option(help: "Worker threads (1-1024, at most the batch size). The result is bitwise identical for every value.")
    var workers = 1

    @Option(help: "Worker placement: spread (across NUMA nodes), compact (fill a node first) or none (no pinning).")
    var placement: PlacementPolicy = .spread

    @Option(help: "How layer 1 reads the pixels: auto (sparse on sparse data such as MNIST, dense on dense data, in between whichever this machine runs faster, timed at start-up), dense or sparse. The result is bitwise identical for each.")
    var input: InputChoice = .auto

    @OptionGroup var hyper: HyperparameterOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: ArgumentHelp("Write a checkpoint (safetensors) here at the end, on SIGINT/SIGTERM, and every --checkpoint-every iterations.", valueName: "path"))
    var checkpoint: String?

    @Option(name: .customLong("checkpoint-every"), help: "Iterations between checkpoints (0: only at the end).")
    var checkpointEvery = 0

    @Option(help: ArgumentHelp("Continue the run saved in this checkpoint; the result equals the uninterrupted run's.", valueName: "path"))
    var resume: String?

    @Option(help: ArgumentHelp("Write the loss of every iteration (and the test accuracy every --eval-every iterations) as CSV; a resumed run continues the file of the run it resumes.", valueName: "path"))
    var metrics: String?

    @Option(name: .customLong("eval-every"), help: ArgumentHelp("Test-set evaluations recorded in --metrics: every N iterations (0: none), or epoch (after each iteration that completes an epoch).", valueName: "N|epoch"))
    var evalEvery = "0"

    @Option(help: ArgumentHelp("Draw the loss curve of this run as SVG.", valueName: "path.svg"))
    var plot: String?

    @Option(help: ArgumentHelp("Write which worker ran which work item, and when, for --trace-count iterations from --trace-from, as a trace that ui.perfetto.dev and chrome://tracing open.", valueName: "path.json"))
    var trace: String?

    @Option(name: .customLong("trace-from"), help: ArgumentHelp("The first iteration (1-based) that --trace records (default: 100, past the iterations that warm the caches, or 1 in a run of fewer than 100).", valueName: "iteration"))
    var traceFrom: Int?

    @Option(name: .customLong("trace-count"), help: ArgumentHelp("How many iterations --trace records, 1-10000 (default: 100).", valueName: "iterations"))
    var traceCount: Int?

    @Flag(help: "Print exactly one JSON object on stdout instead of the summary.")
    var json = false

    /// When --eval-every evaluates.
    enum EvaluationPoints: Equatable {
        case every(Int)
        case epoch
    }

    var evaluationPoints: EvaluationPoints? {
        if evalEvery == "epoch" { return .epoch }
        return Int(evalEvery).flatMap { $0 >= 0 ? .every($0) : nil }
    }

    func validate() throws {
        try hyper.validate(workers: workers)
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be 0 or more, got \(checkpointEvery).") }
        guard checkpointEvery == 0 || checkpoint != nil else { throw ValidationError("--checkpoint-every needs --checkpoint PATH.") }
        guard evaluationPoints != nil else { throw ValidationError("--eval-every must be 0 or more iterations, or epoch; got \(evalEvery).") }
        guard trace != nil || (traceFrom == nil && traceCount == nil) else {
            throw ValidationError("--trace-from and --trace-count need --trace PATH.")
        }
        if let traceFrom {
            guard traceFrom >= 1 else { throw ValidationError("--trace-from must be 1 or more, got \(traceFrom).") }
            if let total = hyper.iterationsWithoutData { try checkTraceFrom(total: total) }
        }
        if let traceCount, !(1...10_000).contains(traceCount) {
            throw ValidationError("--trace-count must be between 1 and 10000, got \(traceCount).")
        }
    }

    /// Fails before training, not after it, when a file the run will write has no folder to go to,
    /// or its path names a folder, FIFO or other non-file.
    func checkOutputFolders() throws {
        for (flag, path) in [("--checkpoint", checkpoint), ("--metrics", metrics), ("--plot", plot), ("--trace", trace)] {
            guard let path else { continue }
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG {
                throw RunError("\(flag) \(path): is \(FileBytes.kind(of: info.st_mode)); give the path of a file to write")
            }
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                throw RunError("\(flag) \(path): the folder \(folder) does not exist; create it or write elsewhere")
            }
            guard access(folder, W_OK) == 0 else {
                throw RunError("\(flag) \(path): the folder \(folder) is not writable; write elsewhere")
            }
        }
    }

    func checkTraceFrom(total: Int) throws {
        if let traceFrom, traceFrom > total {
            throw ValidationError("--trace-from \(traceFrom) is after the run's last iteration (\(total) iterations); trace an earlier iteration.")
        }
    }

    /// The iterations --trace records in a run of `total`, 0-based as the engine counts them.
    func tracedIterations(total: Int) -> Range<Int>? {
        guard trace != nil else { return nil }
        let first = (traceFrom ?? (total >= 100 ? 100 : 1)) - 1
        return first..<min(first + (traceCount ?? 100), total)
    }

    func run() throws {
        let processes = try Processes.join()
        // Only the primary process writes files (on another machine, a rank's folders may differ).
        if processes.isPrimary { try checkOutputFolders() }
        if processes.collective != nil, trace != nil {
            throw ValidationError("--trace records the workers of one process; it is not available under mpirun. Trace a run without mpirun.")
        }
        let kernels = try KernelSet.best()
        let dataset = try dataOptions.load()
        guard hyper.batchSize <= dataset.train.count else {
            throw ValidationError("--batch-size \(hyper.batchSize) exceeds the \(dataset.train.count) training images of \(dataOptions.sourceDescription).")
        }
        try hyper.validate(trainCount: dataset.train.count)
        try processes.checkSame("their training set", dataset.sha256,
                                remedy: "give every rank the same --data (the same files on every machine)")
        // avx512 and avx2 ranks may mix: they round alike (KernelVariant.rounding).
        try processes.checkSame("their kernels' rounding", kernels.variant.rounding.rawValue,
                                remedy: "set PTRAIN_KERNELS to the same variant on every rank (mpirun -x PTRAIN_KERNELS=...), e.g. baseline where some CPUs lack AVX2")
        guard processes.count <= hyper.batchSize else {
            throw ValidationError("mpirun -n \(processes.count) starts more ranks than --batch-size \(hyper.batchSize) has rows; every rank needs at least one row: start at most \(hyper.batchSize) ranks.")
        }
        var config = hyper.configuration(workers: workers, placement: placement, trainCount: dataset.train.count)
        try checkTraceFrom(total: config.iterations)
        let traced = tracedIterations(total: config.iterations)
        config.input = input
        if case .failure(let error) = input.resolve(for: dataset.train) {
            throw ValidationError("--input sparse: \(dataOptions.sourceDescription) has \(error.message)")
        }
        let builder = RunBuilder(kernels: kernels, topology: processes.topology)
        let spec = builder.spec(config, for: dataset.train)
        if processes.count > 1 {
            // MPI counts and offsets are 32-bit: each exchange must stay below 2^31 floats.
            let plan = RankPlan(spec: spec, batchSize: config.batchSize, ranks: processes.count)
            let largest = max(plan.rowCounts.reduce(0, +), plan.parameterCounts.reduce(0, +))
            guard largest <= Int(Int32.max) else {
                throw ValidationError("--batch-size \(config.batchSize) with this network exchanges \(largest) floats per iteration, more than one MPI message holds (2^31 - 1); use a smaller --batch-size or narrower --hidden.")
            }
        }
        var net = builder.initialNetwork(config, for: dataset.train)
        var start = 0
        var state: OptimizerState? = nil
        var resumedLoss: Float? = nil
        if let resume {
            let saved = try TrainingCheckpoint.read(resume)
            try saved.checkResumable(as: config, datasetSHA256: dataset.sha256, input: spec.input, path: resume)
            if KernelVariant(rawValue: saved.kernels)?.rounding != kernels.variant.rounding && processes.isPrimary {
                warn("warning: \(resume) was written with the \(saved.kernels) kernels, this run uses \(kernels.variant.rawValue): the result will not be bitwise equal to an uninterrupted run")
            }
            try processes.checkSame("the checkpoint they resume", "iteration \(saved.iteration), parameters \(saved.net.parametersSHA256.prefix(16))",
                                    remedy: "give every rank the same --resume file (copy it to every machine)")
            net = saved.net
            start = saved.iteration
            state = saved.optimizerState
            resumedLoss = saved.loss
            if let traced, traced.upperBound <= start {
                throw ValidationError("--trace records iterations \(traced.lowerBound + 1)-\(traced.upperBound), before iteration \(start + 1), where --resume \(resume) continues; trace a later iteration with --trace-from.")
            }
        }
        let trainer: any TrainingLoop = processes.collective.map {
            builder.rankTrainer(config, net: net, train: dataset.train, collective: $0, start: start, state: state)
        } ?? builder.trainer(config, net: net, train: dataset.train, start: start, state: state)
        let session = TrainSession(command: self, trainer: trainer, dataset: dataset, kernels: kernels, start: start)
        // Under mpirun, SIGUSR1 too: mpirun passes it on to every rank (and ends with their exit
        // status), whereas it answers SIGINT and SIGTERM by sending the ranks SIGTERM and, after
        // a second, SIGKILL, and exits with 1 (docs/reproducibility.md, "Across processes").
        let signals = StopSignals.install(also: processes.collective != nil ? [SIGUSR1] : [], quiet: !processes.isPrimary) {
            trainer.stopRequest.set()
        }
        // Until the command returns, so a second signal also cuts the last checkpoint write short.
        defer { signals.forEach { $0.cancel() } }
        let outcome = trainer.run(trace: traced) { try session.afterIteration($0) }
        session.progress.finish()
        if processes.isPrimary { outcome.warnings.forEach(warn) }
        // The loss of the last iteration done, by this process or (resuming a complete run) before it.
        let lastLoss = outcome.losses.last ?? resumedLoss
        // The checkpoint first: of the files a run writes, it is the one a later failure (a full
        // disk while writing the metrics, say) must not cost.
        if let checkpoint, outcome.stop == .completed || outcome.stop == .interrupted {
            try session.saveCheckpoint(at: outcome.iterationsDone, loss: lastLoss, to: checkpoint)
        }
        guard processes.isPrimary else {
            // The other ranks leave the files and the report to rank 0. They stopped where it did
            // (the ranks agree after every iteration); a failure is reported by the rank it hit.
            switch outcome.stop {
            case .completed: processes.finish(); return
            case .interrupted: processes.finish(); throw ExitCode(75)
            case .diverged: throw ExitCode(1)
            case .failed(let message): throw message.hasPrefix(RankTrainer.otherRankFailed) ? ExitCode(1) : RunError(message)
            }
        }
        if outcome.iterationsDone == start, let resume {
            // A complete run resumed: nothing trained, so the metrics and plot files of the run that
            // trained it stay as they are, and the report is the checkpoint's.
            if !json { warn("note: \(resume) already holds all \(start) iterations; nothing to train") }
        } else {
            try session.writeMetricsAndPlot(outcome)
        }
        if let trace { try writeText(TraceFile(events: outcome.trace, placement: trainer.placement).json, to: trace, flag: "--trace") }
        switch outcome.stop {
        case .diverged(let iteration, let loss):
            throw RunError("training diverged: the loss of iteration \(iteration) is \(loss); lower --learning-rate\(checkpoint.map { " (\($0) keeps the last good state)" } ?? "")")
        case .failed(let message):
            throw RunError(message)
        case .interrupted:
            processes.finish()
            var note = "ptrain: interrupted after iteration \(outcome.iterationsDone) of \(config.iterations)"
            if let checkpoint { note += "; checkpoint written to \(checkpoint); continue with --resume \(checkpoint)" }
            warn(note)
            throw ExitCode(75)
        case .completed:
            processes.finish()
        }
        let evaluation = builder.evaluate(net, on: dataset.test)
        let report = TrainReport(config: config, learningRate: hyper.learningRate, spec: spec, dataset: dataset,
                                 kernels: kernels, input: trainer.input, ranks: (trainer as? RankTrainer)?.plan, outcome: outcome, lastLoss: lastLoss,
                                 evaluation: evaluation, paramsSHA256: net.parametersSHA256)
        print(json ? report.json : report.summary)
    }
}

/// The per-run state of `ptrain train`: progress line, periodic checkpoints and evaluations, metrics.
final class TrainSession: @unchecked Sendable {
    let command: Train
    let trainer: any TrainingLoop
    let dataset: MNIST
    let kernels: KernelSet
    let progress: ProgressLine
    /// Test accuracy at iterations (1-based) where --eval-every fell.
    private(set) var evaluationResults: [(iteration: Int, accuracy: Double)] = []
    // What `afterIteration` needs, copied out of `command` once: it runs on the engine's critical
    // path every iteration, and reading a property of the parsed command copies the whole struct,
    // retaining each of its strings, which lengthened the hand-off between iterations.
    private let evaluations: Train.EvaluationPoints
    private let periodicCheckpoint: (path: String, every: Int)?
    private let batchSize: Int
    private let trainCount: Int
    /// A resumed run's `--metrics` rows from before it (`MetricsFile.continuing`), empty otherwise.
    private let earlier: MetricsFile

    /// `start`: the iteration a resumed run continues from (0 for a new run).
    init(command: Train, trainer: any TrainingLoop, dataset: MNIST, kernels: KernelSet, start: Int) {
        self.command = command
        self.trainer = trainer
        self.dataset = dataset
        self.kernels = kernels
        progress = ProgressLine(enabled: trainer.isPrimary && isatty(STDERR_FILENO) == 1, batchSize: command.hyper.batchSize)
        evaluations = command.evaluationPoints ?? .every(0)
        batchSize = command.hyper.batchSize
        trainCount = dataset.train.count
        periodicCheckpoint = command.checkpoint.flatMap { command.checkpointEvery > 0 ? ($0, command.checkpointEvery) : nil }
        var earlier = MetricsFile()
        if start > 0, trainer.isPrimary, let path = command.metrics {
            if let continued = MetricsFile.continuing(path, through: start) {
                earlier = continued
            } else {
                warn("note: --metrics \(path) does not hold iterations 1-\(start) of the resumed run; it will hold this run's iterations only")
            }
        }
        self.earlier = earlier
    }

    /// Whether --eval-every evaluates after iteration `i` (1-based): every N iterations, or after
    /// each iteration in which an epoch ends (sample position i·B crosses a multiple of the set's
    /// size N: ⌊i·B/N⌋ > ⌊(i − 1)·B/N⌋).
    func isEvaluationPoint(_ i: Int) -> Bool {
        switch evaluations {
        case .every(let n): return n > 0 && i % n == 0
        case .epoch: return i * batchSize / trainCount > (i - 1) * batchSize / trainCount
        }
    }

    /// Epochs done after iteration `i` (1-based): i·B/N.
    func epochs(after i: Int) -> Double { Double(i) * Double(batchSize) / Double(trainCount) }

    /// Runs in the engine's serial step after the update: the parameters are those after `r.iteration`.
    func afterIteration(_ r: IterationReport) throws {
        progress.update(r)
        if trainer.isPrimary && isEvaluationPoint(r.iteration) {
            evaluationResults.append((r.iteration, Evaluator.evaluate(trainer.net, on: dataset.test, kernels: kernels.functions).accuracy))
        }
        if let (path, every) = periodicCheckpoint, r.iteration % every == 0, r.iteration < r.iterations {
            try saveCheckpoint(at: r.iteration, loss: r.loss, to: path)
        }
    }

    /// Writes the checkpoint unless the parameters hold a non-finite value: a diverging run must
    /// not replace the last good checkpoint. `loss`: that of iteration `iteration`. In a run across
    /// processes every rank calls it at the same iteration (the optimizer state is gathered from
    /// all of them) and rank 0 writes.
    func saveCheckpoint(at iteration: Int, loss: Float?, to path: String) throws {
        trainer.collectOptimizerState()
        guard trainer.isPrimary else { return }
        guard trainer.net.parameters.buffer.allSatisfy(\.isFinite) else {
            throw RunError("training diverged: the parameters after iteration \(iteration) are not finite; lower --learning-rate (\(path) keeps the last good state)")
        }
        let saved = TrainingCheckpoint(net: trainer.net, iteration: iteration, configuration: trainer.configuration,
                                       datasetSHA256: dataset.sha256, kernels: kernels.variant.rawValue,
                                       optimizerState: trainer.optimizerState, loss: loss)
        try writeOutput(to: path, flag: "--checkpoint") { try saved.write(to: path) }
    }

    func writeMetricsAndPlot(_ outcome: TrainingOutcome) throws {
        let first = outcome.iterationsDone - outcome.losses.count + 1
        let accuracy = Dictionary(evaluationResults.map { ($0.iteration, $0.accuracy) }, uniquingKeysWith: { a, _ in a })
        var metrics = earlier
        for (i, loss) in outcome.losses.enumerated() {
            let it = first + i
            metrics.rows.append((it, Double(loss), "\(it),\(String(format: "%.4f", epochs(after: it))),\(loss),\(accuracy[it].map { String($0) } ?? "")"))
        }
        if let path = command.metrics { try writeText(metrics.csv, to: path, flag: "--metrics") }
        if let path = command.plot {
            let h = command.hyper
            let chart = LineChart(
                title: "Training loss: \(trainer.net.spec.description), \(h.optimizer.rawValue), batch \(h.batchSize), lr \(h.learningRate), seed \(h.seed)",
                xLabel: "iteration", yLabel: "loss (cross-entropy)",
                series: [.init(name: "loss", points: metrics.rows.map { (Double($0.iteration), $0.loss) }, color: "#1f77b4")],
                yFromZero: true)
            try writeText(chart.svg(), to: path, flag: "--plot")
        }
    }
}

func writeText(_ text: String, to path: String, flag: String) throws {
    try writeOutput(to: path, flag: flag) { try AtomicFile.write(Array(text.utf8), to: path) }
}

/// Runs `write`, which writes `path` for `flag`; a failure becomes one line naming both.
func writeOutput(to path: String, flag: String, _ write: () throws -> Void) throws {
    do {
        try write()
    } catch let error as CheckpointError {
        throw RunError("\(flag) \(path): \(error.problem); \(error.remedy)")
    }
}

/// A run-time failure with a one-line message (exit status 1).
struct RunError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
