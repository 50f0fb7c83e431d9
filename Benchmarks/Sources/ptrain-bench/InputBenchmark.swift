import ArgumentParser
import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Training

/// `--input auto` against the two inputs it chooses between, on data of three densities.
struct InputBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "input",
        abstract: "Whether --input auto picks the faster of --input sparse and --input dense, on MNIST, Fashion-MNIST and a dense synthetic set.",
        discussion: """
            Each round runs the default network on each set three times, --input sparse, dense and auto, in an order \
            that rotates from round to round, and times the whole run as a user sees it: the set-up (building the \
            sparse rows, auto's density estimate and start-up timing) and the training. The target: auto's median \
            time within 5% of the faster fixed input's. The dense synthetic set is the embedded MNIST with every \
            pixel raised to at least 1 to 64 (a fixed hash of its index), so every pixel is non-zero. \
            Writes input.json to --output.
            """)

    @Option(help: "Rounds (medians are reported).")
    var rounds = 5

    @Option(help: "Iterations of each run (the default run: 10000).")
    var iterations = 10_000

    @Option(help: "Workers of each run.")
    var workers = 2

    @Option(name: .customLong("fashion-mnist"), help: ArgumentHelp("Fashion-MNIST's IDX files (Debian: apt-get install dataset-fashion-mnist); skipped with a note when absent.", valueName: "dir"))
    var fashionMNIST = FashionMNIST.defaultFolder

    @Option(help: ArgumentHelp("Write the results as JSON into this folder (input.json).", valueName: "folder"))
    var output = "Benchmarks/results"

    /// One set's results in input.json.
    struct Record: Codable {
        var set: String
        /// Non-zero pixels over all pixels of the training images.
        var density: Double
        /// Whole-run seconds (set-up and training) of each input.
        var sparse_seconds: Stats
        var dense_seconds: Stats
        var auto_seconds: Stats
        /// The encoding auto chose in each round.
        var auto_choices: [String]
        /// The fixed input with the lower median.
        var faster: String
        /// auto's median over the faster input's median (the target: ≤ 1.05).
        var auto_over_faster: Double
        /// Every run of the set ended with the same parameters (the choice is speed only).
        var same_digest: Bool
    }

    typealias Document = Recorded<Results>

    struct Results: Codable {
        var kernels: String
        var workers: Int
        var iterations: Int
        var records: [Record]
    }

    func validate() throws {
        guard rounds >= 1, iterations >= 1, workers >= 1 else { throw ValidationError("--rounds, --iterations and --workers must be at least 1") }
    }

    func run() throws {
        let kernels = try KernelSet.best()
        let topology = Topology.discover()
        let mnist = try MNIST.loadEmbedded()
        print("machine: \(machineDescription()), \(topology.usableCPUCount) allowed CPU(s), kernels \(kernels.variant.summary)")
        var sets: [(String, LabeledImages)] = [("mnist", mnist.train)]
        switch FashionMNIST.load(fashionMNIST) {
        case .success(let fashion): sets.append(("fashion-mnist", fashion.train))
        case .failure(let reason): print(reason)
        }
        sets.append(("dense-synthetic", Self.denseSynthetic(mnist.train)))
        var config = TrainingConfiguration()
        config.iterations = iterations
        config.workers = workers
        var records: [Record] = []
        for (name, images) in sets {
            let density = SparseImages.density(images, stride: 1)
            print("\n\(name): density \(fixed(density, 3)), \(iterations) iterations, \(workers) workers")
            let inputs: [InputChoice] = [.sparse, .dense, .auto]
            var times: [InputChoice: [Double]] = [:], choices: [String] = [], digests = Set<String>()
            _ = trainOnce(config, data: images, kernels: kernels, topology: topology)  // warm-up
            for round in 0..<rounds {
                for i in 0..<inputs.count {
                    var c = config
                    c.input = inputs[(i + round) % inputs.count]
                    var run: BenchRun?
                    let t = seconds { run = trainOnce(c, data: images, kernels: kernels, topology: topology) }
                    times[c.input, default: []].append(t)
                    if c.input == .auto { choices.append(run!.input.rawValue) }
                    digests.insert(run!.net.parametersSHA256)
                }
            }
            let sparse = Stats(times[.sparse]!), dense = Stats(times[.dense]!), auto = Stats(times[.auto]!)
            let faster = sparse.median <= dense.median ? "sparse" : "dense"
            let ratio = auto.median / min(sparse.median, dense.median)
            print("  sparse \(fixed(sparse.median, 2)) s, dense \(fixed(dense.median, 2)) s, auto \(fixed(auto.median, 2)) s (chose \(choices.joined(separator: ", "))): auto / \(faster) = \(fixed(ratio, 3))\(digests.count == 1 ? "" : "; DIGESTS DIFFER")")
            records.append(Record(set: name, density: density, sparse_seconds: sparse, dense_seconds: dense, auto_seconds: auto,
                                  auto_choices: choices, faster: faster, auto_over_faster: ratio, same_digest: digests.count == 1))
        }
        let document = Document(Results(kernels: kernels.variant.rawValue, workers: workers, iterations: iterations, records: records))
        try document.write(to: "\(output)/input.json")
        print("wrote \(output)/input.json")
        if records.contains(where: { !$0.same_digest }) { throw ExitCode.failure }
    }

    /// `images` with every pixel raised to at least 1 + (a hash of its index mod 64): the same
    /// digits on a noisy, fully non-zero background, which `auto` must read dense.
    static func denseSynthetic(_ images: LabeledImages) -> LabeledImages {
        let pixels = images.pixels.enumerated().map { i, p in
            max(p, UInt8(1 + (UInt64(i) &* 0x9E37_79B9_7F4A_7C15) >> 58))
        }
        return LabeledImages(count: images.count, rows: images.rows, columns: images.columns, pixels: pixels, labels: images.labels)
    }
}

/// Fashion-MNIST, which the input and end-to-end benchmarks read from a folder (the project ships
/// only MNIST).
enum FashionMNIST {
    /// Where Debian's dataset-fashion-mnist package puts it.
    static let defaultFolder = "/usr/share/datasets/fashion-mnist"

    /// The set, or a line saying why it is skipped.
    static func load(_ folder: String) -> Result<MNIST, SkipReason> {
        guard FileManager.default.fileExists(atPath: folder) else {
            return .failure(SkipReason(description: "Fashion-MNIST skipped: no folder \(folder) (apt-get install dataset-fashion-mnist, or pass --fashion-mnist DIR)"))
        }
        do { return .success(try MNIST.load(directory: folder)) } catch {
            return .failure(SkipReason(description: "Fashion-MNIST skipped: \(error)"))
        }
    }

    struct SkipReason: Error, CustomStringConvertible { var description: String }
}
