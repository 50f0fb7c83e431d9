import Dataset
import Kernels
import Model
import Parallel

/// The run `--input auto` calibrates its choice for: its configuration (network, batch, workers,
/// placement, optimizer), kernel variant and CPUs.
public struct InputTrial: Sendable {
    /// The run's configuration; its `input` is ignored.
    public var configuration: TrainingConfiguration
    /// The run's kernel variant.
    public var kernels: KernelSet
    /// The CPUs its workers are placed on.
    public var topology: Topology
    /// The iterations the run still has to do, which the choice is weighed over: all of them for a
    /// new run, those after the checkpoint for a resumed one.
    public var remainingIterations: Int

    /// The trial of a run of `configuration` with `kernels` on `topology` that starts after
    /// `startIteration` iterations (a resumed run's).
    public init(configuration: TrainingConfiguration, kernels: KernelSet, topology: Topology, startIteration: Int = 0) {
        self.configuration = configuration
        self.kernels = kernels
        self.topology = topology
        remainingIterations = max(configuration.iterations - startIteration, 0)
    }
}

/// How `--input auto` decides where the data's density alone does not: a cost model of the whole
/// run, calibrated by measuring the engine itself on this machine.
///
/// Below `sparseUpTo` the sparse kernels win by a margin no machine has reversed (MNIST, density
/// 0.19, trains about 2x faster sparse), above `denseFrom` the dense GEMM does. In between, the
/// break-even moves with the CPU (Fashion-MNIST, density 0.50, has trained faster dense on some
/// hosts of this machine kind and faster sparse on others), the network's widths, the batch and
/// the worker count: the two inputs run different work items, which overlap differently on the
/// workers (a sparse run computes the next batch's layer one on each k-block's home worker while
/// the others reduce). A timing of one batch's gradient on one thread missed that: it put the
/// sparse input 20% behind on Fashion-MNIST where the 2-worker runs were level. So the model's
/// terms are measured on the run's own engine:
///
///     cost(e) = setup(e) · N / n  +  t(e) · iterations
///
/// `iterations`: those the run still has to do (`InputTrial.remainingIterations`; a resumed run
/// weighs only the iterations after its checkpoint).
/// `t(e)`: the median time of an iteration of the run's configuration (network, batch, workers,
/// placement, optimizer, kernels) with encoding e, in short trial runs on `trialImages` evenly
/// spaced images of the set (n of the N images) with a throw-away network, after a warm-up; `setup(e)`: building
/// the trial's loader (copying the pixels, or building the sparse rows), scaled to the whole set.
/// Trials alternate dense, sparse, sparse, dense, so a drift of the shared machine's speed
/// weighs on both; the last pair is skipped when the first already differs by more than
/// `decisiveRatio`, and none after the first when the run is too short to repay them
/// (`trialShare`). The choice changes no bit of the result (the sparse kernels run the dense
/// GEMM's chains minus their zero terms), only the speed.
public enum InputCalibration {
    /// Density up to which `auto` reads sparse without timing.
    public static let sparseUpTo = 0.3
    /// Density from which `auto` reads dense without timing.
    public static let denseFrom = 0.7
    /// Images in the trials' training set (at least two batches): enough that the batches draw
    /// typical images, few enough that building their sparse rows is quick.
    public static let trialImages = 2_000
    /// A trial's first iterations, until they took this long (at least one), are not timed: a
    /// dense run of the lecture's net runs its first few dozen iterations slower than the rest
    /// (cold caches and pages), a sparse one hardly, and timing them favoured sparse.
    public static let warmUpSeconds = 0.006
    /// A trial then times iterations until they took this long (at least two): long enough for a
    /// median of a few dozen of the default run's iterations, short enough that four trials stay a
    /// small share of it.
    public static let trialSeconds = 0.006
    /// Iterations of a trial at most (a bound the two time limits reach first for any network
    /// whose iteration takes more than 12 µs).
    public static let trialIterations = 1_000
    /// When the first two trials' iteration times differ by more than this ratio the second pair
    /// is not run.
    public static let decisiveRatio = 1.25

    /// The encoding with the lower `cost` for a run of `trial` on `images` (which
    /// `SparseImages.supports`), measured; dense without further trials when the first one shows
    /// the run too short to repay them (`repaysTrials`).
    public static func measure(_ images: LabeledImages, trial: InputTrial) -> InputEncoding {
        let sample = evenlySpaced(images, count: max(trialImages, 2 * trial.configuration.batchSize))
        let iterations = Double(trial.remainingIterations)
        let started = MonotonicInstant.now
        var dense = time(sample, .dense, trial)
        guard repaysTrials(firstTrialSeconds: started.elapsed, perIteration: dense.perIteration, iterations: iterations) else { return .dense }
        var sparse = time(sample, .sparse, trial)
        if max(dense.perIteration, sparse.perIteration) <= decisiveRatio * min(dense.perIteration, sparse.perIteration) {
            sparse = best(sparse, time(sample, .sparse, trial))
            dense = best(dense, time(sample, .dense, trial))
        }
        let scale = Double(images.count) / Double(sample.count)
        return cheaper(dense: (dense.setup * scale, dense.perIteration), sparse: (sparse.setup * scale, sparse.perIteration), iterations: iterations)
    }

    /// The most of a run's estimated time (`perIteration` · `iterations`, from the first trial)
    /// that the remaining trials may take (at most three more, each about as long as the first).
    /// Without this bound the trials of a run of a few hundred iterations took longer than the run.
    public static let trialShare = 0.05

    /// Whether three more trials of `firstTrialSeconds` stay within `trialShare` of the run.
    public static func repaysTrials(firstTrialSeconds: Double, perIteration: Double, iterations: Double) -> Bool {
        3 * firstTrialSeconds <= trialShare * perIteration * iterations
    }

    /// One encoding's terms of the cost model: the seconds to build the loader and per iteration.
    public typealias Terms = (setup: Double, perIteration: Double)

    /// Each term's best of two trials.
    static func best(_ a: Terms, _ b: Terms) -> Terms {
        (min(a.setup, b.setup), min(a.perIteration, b.perIteration))
    }

    /// The encoding with the lower setup + perIteration · iterations (dense on a tie: it needs no
    /// sparse rows).
    public static func cheaper(dense: Terms, sparse: Terms, iterations: Double) -> InputEncoding {
        sparse.setup + sparse.perIteration * iterations < dense.setup + dense.perIteration * iterations ? .sparse : .dense
    }

    /// One trial: the seconds to build its trainer (the loader's copy of the images, in this
    /// encoding) and the median seconds of its timed iterations.
    static func time(_ sample: LabeledImages, _ encoding: InputEncoding, _ trial: InputTrial) -> Terms {
        var config = trial.configuration
        config.input = encoding == .sparse ? .sparse : .dense
        config.iterations = trialIterations
        config.sampling = .replacement
        let net = Network(spec: config.spec(input: sample.pixelsPerImage, classes: LabeledImages.classCount), seed: config.seed)
        let built = MonotonicInstant.now
        let trainer = Trainer(configuration: config, net: net, train: sample, kernels: trial.kernels, topology: trial.topology)
        let setup = built.elapsed
        let ends = IterationEnds(capacity: trialIterations)
        let stop = trainer.stopRequest
        _ = trainer.run { report in
            if ends.isEmpty && report.elapsedSeconds < warmUpSeconds { return }
            ends.append(report.elapsedSeconds)
            if ends.count >= 3 && report.elapsedSeconds - ends.first >= trialSeconds { stop.set() }
        }
        return (setup, ends.medianInterval)
    }

    /// `count` evenly spaced images of `images` (all of them if it has no more), so a set sorted
    /// by class still gives typical batches.
    public static func evenlySpaced(_ images: LabeledImages, count: Int) -> LabeledImages {
        guard count < images.count else { return images }
        let chosen = (0..<count).map { $0 * images.count / count }
        let n = images.pixelsPerImage
        var pixels: [UInt8] = []
        pixels.reserveCapacity(count * n)
        for image in chosen { pixels += images.pixels[image * n..<(image + 1) * n] }
        return LabeledImages(count: count, rows: images.rows, columns: images.columns, pixels: pixels,
                             labels: chosen.map { images.labels[$0] })
    }
}

/// When each iteration of a trial ended, written by the trial's serial step only (one thread at a
/// time; the run's end orders the reads after it).
private final class IterationEnds: @unchecked Sendable {
    private var ends: [Double] = []
    init(capacity: Int) { ends.reserveCapacity(capacity) }
    func append(_ end: Double) { ends.append(end) }
    var isEmpty: Bool { ends.isEmpty }
    var count: Int { ends.count }
    /// The end of the first iteration after the warm-up, where the timed part begins.
    var first: Double { ends[0] }
    /// The median time between consecutive ends (robust to a preempted iteration).
    var medianInterval: Double {
        let intervals = zip(ends.dropFirst(), ends).map { $0 - $1 }.sorted()
        return intervals.isEmpty ? .infinity : intervals[intervals.count / 2]
    }
}
