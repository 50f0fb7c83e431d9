import Dataset
import Model
import Training

/// A resumable training state in a safetensors file: tensors W1, b1, W2, b2 (Float32, the shapes
/// of `ParameterLayout`) and metadata strings. The format is specified in docs/checkpoints.md.
///
/// Because batches are a pure function of (seed, iteration) (Philox is counter-based), the sampler
/// state *is* the iteration: resuming at iteration i recomputes exactly the batches an
/// uninterrupted run would have drawn.
public struct TrainingCheckpoint {
    public static let format = "ptrain-checkpoint"
    public static let formatVersion = 1

    public var net: TwoLayerNet
    /// Iterations completed.
    public var iteration: Int
    public var configuration: TrainingConfiguration
    public var datasetSHA256: String
    public var kernels: String

    public init(net: TwoLayerNet, iteration: Int, configuration: TrainingConfiguration, datasetSHA256: String, kernels: String) {
        self.net = net
        self.iteration = iteration
        self.configuration = configuration
        self.datasetSHA256 = datasetSHA256
        self.kernels = kernels
    }

    public var metadata: [String: String] {
        let c = configuration, s = net.layout.shape
        return [
            "format": Self.format, "format_version": String(Self.formatVersion),
            "iteration": String(iteration), "iterations": String(c.iterations),
            "seed": String(c.seed), "batch_size": String(c.batchSize),
            "input": String(s.input), "hidden": String(s.hidden), "classes": String(s.output),
            "learning_rate": "\(c.learningRate)", "learning_rate_bits": String(c.learningRate.bitPattern, radix: 16),
            "sampling": c.sampling.rawValue,
            "sampler": "philox4x32-10 counter-based; state = iteration",
            "dataset_sha256": datasetSHA256,
            "workers": String(c.workers), "placement": c.placement.rawValue, "kernels": kernels,
            "params_sha256": net.parametersSHA256,
        ]
    }

    public func encoded() -> [UInt8] {
        let p = net.parameterArray
        let tensors = net.layout.tensors.map { Tensor(name: $0.name, shape: $0.shape, values: Array(p[$0.range])) }
        return SafeTensors.encode(tensors: tensors, metadata: metadata)
    }

    /// Writes atomically (see `AtomicFile`).
    public func write(to path: String) throws {
        try AtomicFile.write(encoded(), to: path)
    }

    /// Reads and validates a checkpoint: format, version, tensor names and shapes, and that the
    /// parameters hash to the recorded `params_sha256`.
    public static func read(_ path: String) throws -> TrainingCheckpoint {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path)
        } catch let e as DatasetError {
            throw CheckpointError(path: path, problem: e.problem, remedy: "check the --checkpoint/--resume path")
        }
        return try decode(bytes, path: path)
    }

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
        guard m["format_version"] == String(formatVersion) else {
            throw CheckpointError(path: path, problem: "has format version \(m["format_version"] ?? "?"), this ptrain reads version \(formatVersion)",
                                  remedy: "use the ptrain version that wrote it")
        }
        var c = TrainingConfiguration()
        c.iterations = try int("iterations")
        c.batchSize = try int("batch_size")
        c.hidden = try int("hidden")
        guard let bits = UInt32(try field("learning_rate_bits"), radix: 16), let seed = UInt64(try field("seed")),
              let sampling = SamplingMode(rawValue: try field("sampling")) else {
            throw CheckpointError(path: path, problem: "metadata learning_rate_bits, seed or sampling is malformed")
        }
        c.learningRate = Float(bitPattern: bits)
        c.seed = seed
        c.sampling = sampling
        c.workers = max(try int("workers"), 1)
        let input = try int("input"), classes = try int("classes")
        guard (1...(1 << 24)).contains(input), (1...64).contains(classes), (1...65_536).contains(c.hidden) else {
            throw CheckpointError(path: path, problem: "network sizes \(input)-\(c.hidden)-\(classes) are out of range")
        }
        let net = TwoLayerNet(shape: NetworkShape(input: input, hidden: c.hidden, output: classes))
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        guard byName.count == 4 else {
            throw CheckpointError(path: path, problem: "holds tensors \(byName.keys.sorted()), expected W1, b1, W2, b2")
        }
        for (name, range, shape) in net.layout.tensors {
            guard let t = byName[name], t.shape == shape else {
                throw CheckpointError(path: path, problem: "tensor \(name) is missing or not of shape \(shape)")
            }
            (net.parameters.pointer + range.lowerBound).update(from: t.values, count: t.values.count)
        }
        guard net.parametersSHA256 == m["params_sha256"] else {
            throw CheckpointError(path: path, problem: "parameters do not match their recorded SHA-256 (corrupt file)")
        }
        return TrainingCheckpoint(net: net, iteration: try int("iteration"), configuration: c,
                                  datasetSHA256: try field("dataset_sha256"), kernels: try field("kernels"))
    }

    /// Refuses a resume that could not continue the same run: another dataset, another seed, batch
    /// size, width, learning rate or sampling mode. Workers and placement may differ (they do not
    /// change the result).
    public func checkResumable(as config: TrainingConfiguration, datasetSHA256: String, input: Int, path: String) throws {
        let c = configuration
        var differences: [String] = []
        if datasetSHA256 != self.datasetSHA256 { differences.append("dataset (sha256 \(self.datasetSHA256.prefix(12))... in the checkpoint, \(datasetSHA256.prefix(12))... now)") }
        if config.seed != c.seed { differences.append("--seed \(c.seed) in the checkpoint, \(config.seed) now") }
        if config.batchSize != c.batchSize { differences.append("--batch-size \(c.batchSize) in the checkpoint, \(config.batchSize) now") }
        if config.hidden != c.hidden || input != net.layout.shape.input { differences.append("--hidden \(c.hidden) in the checkpoint, \(config.hidden) now") }
        if config.learningRate.bitPattern != c.learningRate.bitPattern { differences.append("--learning-rate \(c.learningRate) in the checkpoint, \(config.learningRate) now") }
        if config.sampling != c.sampling { differences.append("--sampling \(c.sampling.rawValue) in the checkpoint, \(config.sampling.rawValue) now") }
        guard differences.isEmpty else {
            throw CheckpointError(path: path, problem: "cannot resume: " + differences.joined(separator: "; "),
                                  remedy: "resume with the checkpoint's settings (workers and placement may change)")
        }
        guard iteration < config.iterations else {
            throw CheckpointError(path: path, problem: "already holds \(iteration) iterations, --iterations is \(config.iterations)",
                                  remedy: "raise --iterations to train further, or use `ptrain eval --checkpoint`")
        }
    }
}
