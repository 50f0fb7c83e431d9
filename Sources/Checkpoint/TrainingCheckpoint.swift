import Dataset
import Kernels
import Model
import Training

/// A resumable training state in a safetensors file: tensors W1, b1, ..., WL, bL (Float32, the
/// shapes of `ParameterLayout`), the optimizer's state tensors (`velocity.W1`, `m.W1`, `v.W1`, ...)
/// and metadata strings. The format is specified in docs/checkpoints.md.
///
/// Because batches are a pure function of (seed, iteration) (Philox is counter-based), the sampler
/// state *is* the iteration: resuming at iteration i recomputes exactly the batches an
/// uninterrupted run would have drawn.
public struct TrainingCheckpoint {
    /// The metadata `format` value that marks a ptrain checkpoint.
    public static let format = "ptrain-checkpoint"
    /// 2: the network spec (`layers`, `activation`, `init`) replaced version 1's `input`, `hidden`
    /// and `classes`. Version 1 files (the lecture's one sigmoid layer) still load.
    public static let formatVersion = 2
    /// The format versions this build reads (docs/checkpoints.md).
    public static let readableVersions = 1...2

    /// The most inputs a checkpoint may declare (2^24: far above any image set, and a bound on
    /// what a hostile header can make ptrain allocate).
    public static let maximumInput = 1 << 24
    /// The most classes: the fused softmax kernel's row limit.
    public static let maximumClasses = 64

    /// The parameters at `iteration`.
    public var net: Network
    /// Iterations completed.
    public var iteration: Int
    /// The run's configuration; a resume must match it (`checkResumable`).
    public var configuration: TrainingConfiguration
    /// SHA-256 of the training set, so a resume on other data is refused.
    public var datasetSHA256: String
    /// The kernel variant that trained it (a resume on another rounding warns).
    public var kernels: String
    /// The optimizer's state after `iteration` (none for SGD).
    public var optimizerState: OptimizerState
    /// The training loss of iteration `iteration` (its batch's mean), so that a resume with nothing
    /// left to train can still report it; nil in files that do not record it (it is optional).
    public var loss: Float?

    /// A checkpoint of `net` after `iteration` iterations of `configuration` on the data of `datasetSHA256`; `optimizerState` nil is zero state (SGD's, or a new run's).
    public init(net: Network, iteration: Int, configuration: TrainingConfiguration, datasetSHA256: String, kernels: String,
                optimizerState: OptimizerState? = nil, loss: Float? = nil) {
        self.net = net
        self.loss = loss
        self.iteration = iteration
        self.configuration = configuration
        self.datasetSHA256 = datasetSHA256
        self.kernels = kernels
        self.optimizerState = optimizerState ?? OptimizerState(slots: configuration.update.stateSlots, parameterCount: net.layout.count)
        precondition(self.optimizerState.slots == configuration.optimizer.kind.stateNames.count
                     && self.optimizerState.parameterCount == net.layout.count)
    }

    /// The optimizer's and the schedule's Float32 settings: metadata key (a decimal for people, and
    /// the exact bits in hex under `KEY_bits`), the flag that sets it, and where the configuration
    /// holds it. One table, so writing, reading and the resume check cannot disagree.
    static var floatSettings: [(key: String, flag: String, setting: WritableKeyPath<TrainingConfiguration, Float>)] {
        [("momentum", "--momentum", \.optimizer.momentum), ("beta1", "--beta1", \.optimizer.beta1),
         ("beta2", "--beta2", \.optimizer.beta2), ("epsilon", "--epsilon", \.optimizer.epsilon),
         ("weight_decay", "--weight-decay", \.optimizer.weightDecay), ("decay_factor", "--decay-factor", \.schedule.decayFactor)]
    }

    /// The safetensors header's metadata: every key docs/checkpoints.md lists, as strings.
    public var metadata: [String: String] {
        let c = configuration, spec = net.spec
        var optimizer = ["optimizer": c.optimizer.kind.rawValue, "schedule": c.schedule.kind.rawValue,
                         "warmup": String(c.schedule.warmup), "decay_every": String(c.schedule.decayEvery)]
        for (key, _, setting) in Self.floatSettings {
            optimizer[key] = "\(c[keyPath: setting])"
            optimizer[key + "_bits"] = String(c[keyPath: setting].bitPattern, radix: 16)
        }
        var m = optimizer.merging([
            "format": Self.format, "format_version": String(Self.formatVersion),
            "iteration": String(iteration), "iterations": String(c.iterations),
            "seed": String(c.seed), "batch_size": String(c.batchSize),
            "layers": spec.widths.map(String.init).joined(separator: ","),
            "activation": spec.activation.rawValue, "init": spec.initialization.rawValue,
            "learning_rate": "\(c.learningRate)", "learning_rate_bits": String(c.learningRate.bitPattern, radix: 16),
            "sampling": c.sampling.rawValue,
            "sampler": "philox4x32-10 counter-based; state = iteration",
            "dataset_sha256": datasetSHA256,
            "workers": String(c.workers), "placement": c.placement.rawValue, "kernels": kernels,
            "params_sha256": net.parametersSHA256,
        ]) { a, _ in a }
        if let loss { m["loss"] = "\(loss)" }
        return m
    }

    /// The tensors in file order: the parameters (W1, b1, ..., so the data section starts with the
    /// parameter buffer), then each state slot's copy of them, named `SLOT.TENSOR`.
    public func encoded() -> [UInt8] {
        let p = net.parameterArray
        var tensors = net.layout.tensors.map { Tensor(name: $0.name, shape: $0.shape, values: Array(p[$0.range])) }
        let state = optimizerState.buffer.pointer, count = net.layout.count
        for (s, slot) in configuration.optimizer.kind.stateNames.enumerated() {
            tensors += net.layout.tensors.map {
                Tensor(name: "\(slot).\($0.name)", shape: $0.shape,
                       values: Array(UnsafeBufferPointer(start: state + s * count + $0.range.lowerBound, count: $0.range.count)))
            }
        }
        return SafeTensors.encode(tensors: tensors, metadata: metadata)
    }

    /// Writes atomically (see `AtomicFile`).
    public func write(to path: String) throws {
        try AtomicFile.write(encoded(), to: path)
    }

    /// Reads and validates a checkpoint: format, version, network spec, tensor names and shapes,
    /// and that the parameters hash to the recorded `params_sha256`.
    public static func read(_ path: String) throws -> TrainingCheckpoint {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path)
        } catch let e as DatasetError {
            throw CheckpointError(path: path, problem: e.problem, remedy: "check the --checkpoint/--resume path")
        }
        return try decode(bytes, path: path)
    }

    /// The network a checkpoint's metadata declares, checked against the limits; nothing is allocated.
    static func spec(_ m: [String: String], version: Int, path: String) throws -> NetworkSpec {
        func field(_ key: String) throws -> String {
            guard let v = m[key] else { throw CheckpointError(path: path, problem: "metadata lacks \"\(key)\"") }
            return v
        }
        let widths: [Int]
        let activation: ActivationKind, initialization: Initialization
        if version == 1 {
            widths = try ["input", "hidden", "classes"].map { key in
                guard let v = Int(try field(key)) else { throw CheckpointError(path: path, problem: "metadata \"\(key)\" is not a count") }
                return v
            }
            (activation, initialization) = (.sigmoid, .lecture)
        } else {
            let parts = try field("layers").split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count >= 3, parts.allSatisfy({ Int($0) != nil }) else {
                throw CheckpointError(path: path, problem: "metadata \"layers\" is not a list of at least 3 widths")
            }
            widths = parts.map { Int($0)! }
            guard let a = ActivationKind(rawValue: try field("activation")), let i = Initialization(rawValue: try field("init")) else {
                throw CheckpointError(path: path, problem: "metadata activation \"\(m["activation"] ?? "")\" or init \"\(m["init"] ?? "")\" is unknown")
            }
            (activation, initialization) = (a, i)
        }
        let (input, classes, hidden) = (widths[0], widths[widths.count - 1], Array(widths[1..<widths.count - 1]))
        guard (1...maximumInput).contains(input), (2...maximumClasses).contains(classes), NetworkSpec.problem(hidden: hidden) == nil else {
            throw CheckpointError(path: path, problem: "network sizes \(widths.map(String.init).joined(separator: "-")) are out of range")
        }
        return NetworkSpec(input: input, hidden: hidden, output: classes, activation: activation, initialization: initialization)
    }

    /// Decodes a checkpoint file's bytes; errors name `path` and the key at fault.
    public static func decode(_ bytes: [UInt8], path: String) throws -> TrainingCheckpoint {
        let (tensors, m) = try SafeTensors.decode(bytes, path: path)
        func field(_ key: String) throws -> String {
            guard let v = m[key] else { throw CheckpointError(path: path, problem: "metadata lacks \"\(key)\"") }
            return v
        }
        func int(_ key: String) throws -> Int {
            guard let v = Int(try field(key)), v >= 0 else { throw CheckpointError(path: path, problem: "metadata \"\(key)\" is not a count") }
            return v
        }
        guard m["format"] == format else {
            throw CheckpointError(path: path, problem: "is a safetensors file but not a ptrain checkpoint (metadata format is \(m["format"] ?? "missing"))")
        }
        guard let version = m["format_version"].flatMap({ Int($0) }), readableVersions.contains(version) else {
            throw CheckpointError(path: path, problem: "has format version \(m["format_version"] ?? "?"), this ptrain reads versions \(readableVersions.lowerBound)-\(readableVersions.upperBound)",
                                  remedy: "use the ptrain version that wrote it")
        }
        let spec = try spec(m, version: version, path: path)
        var c = TrainingConfiguration()
        c.iterations = try int("iterations")
        c.batchSize = try int("batch_size")
        c.hidden = spec.hidden
        c.activation = spec.activation
        c.initialization = spec.initialization
        guard let bits = UInt32(try field("learning_rate_bits"), radix: 16), let seed = UInt64(try field("seed")),
              let sampling = SamplingMode(rawValue: try field("sampling")) else {
            throw CheckpointError(path: path, problem: "metadata learning_rate_bits, seed or sampling is malformed")
        }
        c.learningRate = Float(bitPattern: bits)
        c.seed = seed
        c.sampling = sampling
        c.workers = max(try int("workers"), 1)
        if version >= 2 { try readOptimizer(m, into: &c, path: path) }
        // The tensors are checked against the spec before the network is allocated: a header that
        // declares a huge network cannot make ptrain allocate it (the tensors themselves are
        // bounded by the file's length).
        let layout = ParameterLayout(spec)
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let slots = c.optimizer.kind.stateNames
        let expected = ([""] + slots.map { $0 + "." }).flatMap { prefix in
            layout.tensors.map { (name: prefix + $0.name, range: $0.range, shape: $0.shape) }
        }
        guard byName.count == expected.count else {
            throw CheckpointError(path: path, problem: "holds tensors \(byName.keys.sorted()), expected \(expected.map(\.name).joined(separator: ", "))")
        }
        for (name, _, shape) in expected {
            guard let t = byName[name], t.shape == shape else {
                throw CheckpointError(path: path, problem: "tensor \(name) is missing or not of shape \(shape)")
            }
        }
        let net = Network(spec: spec)
        let state = OptimizerState(slots: slots.count, parameterCount: layout.count)
        for (i, (name, range, _)) in expected.enumerated() {
            let values = byName[name]!.values
            let slot = i / layout.tensors.count  // 0: the parameters, s + 1: state slot s
            let target = slot == 0 ? net.parameters.pointer : state.buffer.pointer + (slot - 1) * layout.count
            (target + range.lowerBound).update(from: values, count: values.count)
        }
        guard net.parametersSHA256 == m["params_sha256"] else {
            throw CheckpointError(path: path, problem: "parameters do not match their recorded SHA-256 (corrupt file)")
        }
        let loss = try m["loss"].map { text in
            guard let v = Float(text) else { throw CheckpointError(path: path, problem: "metadata \"loss\" is not a number") }
            return v
        }
        return TrainingCheckpoint(net: net, iteration: try int("iteration"), configuration: c,
                                  datasetSHA256: try field("dataset_sha256"), kernels: try field("kernels"), optimizerState: state,
                                  loss: loss)
    }

    /// The optimizer and schedule a version-2 file's metadata declares, into `c`.
    static func readOptimizer(_ m: [String: String], into c: inout TrainingConfiguration, path: String) throws {
        func count(_ key: String) throws -> Int {
            guard let text = m[key], let v = Int(text), v >= 0 else { throw CheckpointError(path: path, problem: "metadata \"\(key)\" is not a count") }
            return v
        }
        guard let kind = m["optimizer"].flatMap(OptimizerKind.init(rawValue:)) else {
            throw CheckpointError(path: path, problem: "metadata optimizer \"\(m["optimizer"] ?? "")\" is unknown")
        }
        guard let scheduleKind = m["schedule"].flatMap(ScheduleKind.init(rawValue:)) else {
            throw CheckpointError(path: path, problem: "metadata schedule \"\(m["schedule"] ?? "")\" is unknown")
        }
        c.optimizer.kind = kind
        c.schedule.kind = scheduleKind
        (c.schedule.warmup, c.schedule.decayEvery) = (try count("warmup"), try count("decay_every"))
        for (key, _, setting) in floatSettings {
            guard let text = m[key + "_bits"], let bits = UInt32(text, radix: 16) else {
                throw CheckpointError(path: path, problem: "metadata \"\(key)_bits\" is missing or not 8 hex digits")
            }
            c[keyPath: setting] = Float(bitPattern: bits)
        }
    }

    /// Refuses a resume that could not continue the same run: another dataset, network, seed,
    /// batch size, learning rate, sampling mode, optimizer or schedule, or fewer iterations than the
    /// checkpoint holds. Workers and placement may differ (they do not change the result).
    public func checkResumable(as config: TrainingConfiguration, datasetSHA256: String, input: Int, path: String) throws {
        let c = configuration
        var differences: [String] = []
        if datasetSHA256 != self.datasetSHA256 { differences.append("dataset (sha256 \(self.datasetSHA256.prefix(12))... in the checkpoint, \(datasetSHA256.prefix(12))... now)") }
        if input != net.spec.input { differences.append("input width \(net.spec.input) in the checkpoint, \(input) now") }
        func list(_ widths: [Int]) -> String { widths.map(String.init).joined(separator: ",") }
        if config.hidden != c.hidden { differences.append("--hidden \(list(c.hidden)) in the checkpoint, \(list(config.hidden)) now") }
        if config.activation != c.activation { differences.append("--activation \(c.activation.rawValue) in the checkpoint, \(config.activation.rawValue) now") }
        if config.initialization != c.initialization { differences.append("--init \(c.initialization.rawValue) in the checkpoint, \(config.initialization.rawValue) now") }
        if config.seed != c.seed { differences.append("--seed \(c.seed) in the checkpoint, \(config.seed) now") }
        if config.batchSize != c.batchSize { differences.append("--batch-size \(c.batchSize) in the checkpoint, \(config.batchSize) now") }
        if config.learningRate.bitPattern != c.learningRate.bitPattern { differences.append("--learning-rate \(c.learningRate) in the checkpoint, \(config.learningRate) now") }
        if config.sampling != c.sampling { differences.append("--sampling \(c.sampling.rawValue) in the checkpoint, \(config.sampling.rawValue) now") }
        if config.optimizer.kind != c.optimizer.kind {
            differences.append("--optimizer \(c.optimizer.kind.rawValue) in the checkpoint, \(config.optimizer.kind.rawValue) now")
        }
        for (_, flag, setting) in Self.floatSettings where config[keyPath: setting].bitPattern != c[keyPath: setting].bitPattern {
            differences.append("\(flag) \(c[keyPath: setting]) in the checkpoint, \(config[keyPath: setting]) now")
        }
        let (schedule, scheduleNow) = (c.schedule, config.schedule)
        if scheduleNow.kind != schedule.kind { differences.append("--schedule \(schedule.kind.rawValue) in the checkpoint, \(scheduleNow.kind.rawValue) now") }
        if scheduleNow.warmup != schedule.warmup { differences.append("--warmup \(schedule.warmup) in the checkpoint, \(scheduleNow.warmup) now") }
        if scheduleNow.decayEvery != schedule.decayEvery { differences.append("--decay-every \(schedule.decayEvery) in the checkpoint, \(scheduleNow.decayEvery) now") }
        // A cosine schedule spans the whole run: another length is another schedule.
        if schedule.kind == .cosine && scheduleNow.kind == .cosine && config.iterations != c.iterations {
            differences.append("the cosine schedule spans \(c.iterations) iterations in the checkpoint, \(config.iterations) now (--iterations or --epochs)")
        }
        guard differences.isEmpty else {
            throw CheckpointError(path: path, problem: "cannot resume: " + differences.joined(separator: "; "),
                                  remedy: "resume with the checkpoint's settings (workers and placement may change)")
        }
        // Equal is allowed: the run is complete, and resuming it trains nothing (so a restart
        // script can always rerun the same command).
        guard iteration <= config.iterations else {
            throw CheckpointError(path: path, problem: "already holds \(iteration) iterations, more than the \(config.iterations) asked for",
                                  remedy: "ask for at least \(iteration) (--iterations or --epochs) to continue it, or evaluate it with `ptrain eval --checkpoint`")
        }
    }
}
