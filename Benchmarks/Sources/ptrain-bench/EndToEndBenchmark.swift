import ArgumentParser
import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Training

#if canImport(Glibc)
import Glibc
#endif

struct EndToEndBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Whole training runs against the FLOP floor and numpy's same loop, all measured in one run.",
        discussion: """
            Workloads: lecture (the default run: 784-100-10 sigmoid, batch 100, input auto), heavy (784-1024-10
            sigmoid, batch 1000, 200 iterations, --input dense) and deep (784-1024-1024-1024-10 ReLU, He, batch 512,
            60 iterations, --input dense) and fashion (the default run on Fashion-MNIST, --fashion-mnist; skipped with a
            note when absent). Each timed ptrain run is paired with the FMA peak of the same cores measured
            just before it and alternates with numpy's same loop (Benchmarks/reference/two_layer_net.py) at its
            faster BLAS thread count. The lecture workload also reports start-up time, accuracy against the Float64
            reference path, sparse against dense input and peak memory. Writes e2e.json to --output.
            """)

    @Option(help: "Repeats per measurement (medians are reported).")
    var repeats = 5

    @Option(help: "Iterations of the lecture workload.")
    var iterations = 10_000

    @Option(help: "Workers of the timed runs (the targets use 2 on a 2-core machine).")
    var workers = 2

    @Option(parsing: .upToNextOption, help: "Workloads to run, of: lecture, heavy, deep, fashion.")
    var workloads = ["lecture", "heavy", "deep", "fashion"]

    @Option(name: .customLong("fashion-mnist"), help: ArgumentHelp("Fashion-MNIST's IDX files for the fashion workload (Debian: apt-get install dataset-fashion-mnist).", valueName: "dir"))
    var fashionMNIST = FashionMNIST.defaultFolder

    @Flag(help: "Skip the numpy peer.")
    var noNumpy = false

    @Option(help: ArgumentHelp("Write the results as JSON into this folder (e2e.json).", valueName: "folder"))
    var output = "Benchmarks/results"

    struct Workload {
        var key: String
        var network: BenchNetwork
        var iterations: Int
        var input: InputChoice
        /// The IDX folder of its data; nil: the embedded MNIST.
        var data: String? = nil
    }

    /// One workload's results in e2e.json.
    struct Record: Codable {
        var workload: String
        /// The training set ("mnist", "fashion-mnist").
        var dataset: String?
        var widths: [Int]
        var activation: String
        var batch_size: Int
        var iterations: Int
        var input: String
        /// The input each timed run read (what `auto` chose).
        var inputs_read: [String]?
        var workers: Int
        /// Dense GEMM FLOPs of one iteration (`flopsPerIteration`); a sparse input does fewer.
        var flops_per_iteration: Double
        /// The FMA peak of `min(workers, CPUs)` cores at the widest vectors, before each timed run.
        var peak_gflops: Stats
        var seconds: Stats
        /// Dense FLOPs per second over the peak measured just before the same run, median of the pairs.
        var fraction_of_peak: Double
        var numpy_threads: Int?
        var numpy_seconds: Stats?
        /// numpy's dense FLOPs per second over the median peak: how close the peer itself is to
        /// the floor, which bounds the speedup any engine can show over it (1 / this).
        var numpy_fraction_of_peak: Double?
        /// numpy's median time over ptrain's (ratio of medians; > 1: ptrain is faster).
        var speedup_over_numpy: Double?
        /// The same, median of the ratios of alternating pairs.
        var speedup_over_numpy_paired: Double?
        var test_accuracy: Double
        var numpy_test_accuracy: Double?
    }

    typealias Document = Recorded<Results>

    struct Results: Codable {
        var kernels: String
        var peak_vectors: String
        var records: [Record]
    }

    func validate() throws {
        let unknown = workloads.filter { !["lecture", "heavy", "deep", "fashion"].contains($0) }
        guard unknown.isEmpty else { throw ValidationError("--workloads: unknown \(unknown.joined(separator: ", ")); choose from lecture, heavy, deep, fashion") }
        guard repeats >= 1, iterations >= 1, workers >= 1 else { throw ValidationError("--repeats, --iterations and --workers must be at least 1") }
    }

    func run() throws {
        let kernels = try KernelSet.best()
        let topology = Topology.discover()
        let mnist = try MNIST.loadEmbedded()
        print("machine: \(machineDescription()), \(topology.usableCPUCount) allowed CPU(s), kernels \(kernels.variant.summary), peak at \(widestVectors)")
        let all = [
            Workload(key: "lecture", network: .lecture, iterations: iterations, input: .auto),
            Workload(key: "heavy", network: .heavy, iterations: 200, input: .dense),
            Workload(key: "deep", network: .deep, iterations: 60, input: .dense),
            Workload(key: "fashion", network: .lecture, iterations: iterations, input: .auto, data: fashionMNIST),
        ]
        let numpyMissing = noNumpy ? "numpy peer skipped (--no-numpy)" : NumpyPeer.unavailableReason
        if let numpyMissing { print(numpyMissing) }
        var records: [Record] = []
        for w in all where workloads.contains(w.key) {
            if w.key == "lecture" { try lectureDetails(mnist: mnist, kernels: kernels, topology: topology) }
            var data = mnist
            if let folder = w.data {
                switch FashionMNIST.load(folder) {
                case .success(let set): data = set
                case .failure(let reason): print("\n\(w.key): \(reason)"); continue
                }
            }
            records.append(measure(w, dataset: data, kernels: kernels, topology: topology, numpy: numpyMissing == nil))
        }
        let document = Document(Results(kernels: kernels.variant.rawValue, peak_vectors: widestVectors, records: records))
        try document.write(to: "\(output)/e2e.json")
        print("wrote \(output)/e2e.json")
    }

    /// Times one workload: `repeats` rounds of (FMA peak, ptrain run, numpy run), so a change in the
    /// shared machine's load moves the run, its floor and its peer alike.
    func measure(_ w: Workload, dataset: MNIST, kernels: KernelSet, topology: Topology, numpy: Bool) -> Record {
        let net = w.network
        let config = net.configuration(iterations: w.iterations, workers: workers, input: w.input)
        let widths = net.widths
        let flops = flopsPerIteration(widths: widths, batch: net.batch)
        let cores = min(workers, topology.usableCPUCount)
        print("\n\(w.key)\(w.data.map { " (\($0))" } ?? ""): \(widths.map(String.init).joined(separator: "-")) \(net.activation.rawValue), batch \(net.batch), \(w.iterations) iterations, input \(w.input.rawValue), \(workers) workers; \(fixed(flops / 1e9, 3)) GFLOP per iteration (dense)")
        _ = trainOnce(config, data: dataset.train, kernels: kernels, topology: topology)  // warm-up
        // numpy's faster BLAS thread setting, one run each.
        var numpyThreads: Int? = nil
        if numpy {
            let probes = NumpyPeer.run(dtype: "float32", iterations: w.iterations, batchSize: net.batch, hidden: net.hidden,
                                       activation: net.activation, initialization: net.initialization, data: w.data, threadSettings: Array(Set([1, cores])).sorted())
            for r in probes { print("  numpy float32, \(r.threads) BLAS thread(s): \(fixed(r.train_seconds, 2)) s") }
            numpyThreads = probes.min { $0.train_seconds < $1.train_seconds }.flatMap { Int($0.threads) }
        }
        var peaks: [Double] = [], runs: [Double] = [], peers: [Double] = [], peerAccuracy: Double? = nil, inputs: [String] = []
        for _ in 0..<repeats {
            peaks.append(fmaPeak(threads: cores, repeats: 1).median)
            let run = trainOnce(config, data: dataset.train, kernels: kernels, topology: topology)
            runs.append(run.trainSeconds)
            inputs.append(run.input.rawValue)
            if let threads = numpyThreads, let r = NumpyPeer.run(dtype: "float32", iterations: w.iterations, batchSize: net.batch, hidden: net.hidden,
                                                                activation: net.activation, initialization: net.initialization, data: w.data, threadSettings: [threads]).first {
                peers.append(r.train_seconds)
                peerAccuracy = r.test_accuracy
            }
        }
        let builder = RunBuilder(kernels: kernels, topology: topology)
        let accuracy = builder.evaluate(builder.train(config, on: dataset.train).net, on: dataset.test).accuracy
        let peak = Stats(peaks), times = Stats(runs)
        let fraction = Stats(zip(runs, peaks).map { flops * Double(w.iterations) / $0 / ($1 * 1e9) }).median
        print("  FMA peak on \(cores) core(s) before each run: median \(fixed(peak.median)) GFLOP/s (min \(fixed(peak.min)), max \(fixed(peak.max)))")
        print("  ptrain (\(Set(inputs).sorted().joined(separator: ", ")) input): median \(fixed(times.median, 2)) s (min \(fixed(times.min, 2)), max \(fixed(times.max, 2))), \(fixed(flops * Double(w.iterations) / times.median / 1e9)) GFLOP/s, \(fixed(100 * fraction))% of the peak (paired), test accuracy \(accuracy)")
        var record = Record(workload: w.key, dataset: w.data == nil ? "mnist" : "fashion-mnist", widths: widths, activation: net.activation.rawValue, batch_size: net.batch, iterations: w.iterations,
                            input: w.input.rawValue, inputs_read: inputs, workers: workers, flops_per_iteration: flops, peak_gflops: peak,
                            seconds: times, fraction_of_peak: fraction, test_accuracy: accuracy)
        if peers.count == runs.count, let threads = numpyThreads {
            let n = Stats(peers)
            record.numpy_threads = threads
            record.numpy_seconds = n
            record.speedup_over_numpy = n.median / times.median
            record.speedup_over_numpy_paired = Stats(zip(peers, runs).map { $0 / $1 }).median
            record.numpy_test_accuracy = peerAccuracy
            record.numpy_fraction_of_peak = Stats(zip(peers, peaks).map { flops * Double(w.iterations) / $0 / ($1 * 1e9) }).median
            print("  numpy float32, \(threads) BLAS thread(s), alternating: median \(fixed(n.median, 2)) s (min \(fixed(n.min, 2)), max \(fixed(n.max, 2))), \(fixed(100 * record.numpy_fraction_of_peak!))% of the peak, test accuracy \(peerAccuracy ?? 0)")
            print("  ptrain's speed over numpy's: \(fixed(n.median / times.median, 2))x (ratio of medians; paired median \(fixed(record.speedup_over_numpy_paired!, 2))x)")
        }
        return record
    }

    /// The default run's start-up time, its accuracy against the Float64 reference path, its sparse
    /// input against dense, and the CLI's peak memory (printed only).
    func lectureDetails(mnist: MNIST, kernels: KernelSet, topology: Topology) throws {
        // Start-up: decompress, validate and checksum the embedded MNIST, and build the sparse rows
        // the default run reads.
        let startup = Stats((0..<repeats).map { _ in seconds { _ = SparseImages(try! MNIST.loadEmbedded().train) } })
        print("start-up (load + verify embedded MNIST + build its sparse rows): median \(fixed(startup.median, 3)) s (min \(fixed(startup.min, 3)), max \(fixed(startup.max, 3)))")
        print("input density: \(fixed(SparseImages.density(mnist.train, stride: 1), 3)) (auto reads it sparse: layer 1 multiplies only the non-zero pixels, fewer FLOPs than the dense floor counts)")
        var config = TrainingConfiguration()
        config.iterations = iterations
        config.workers = workers
        let builder = RunBuilder(kernels: kernels, topology: topology)
        let net = builder.train(config, on: mnist.train).net
        let fast = builder.evaluate(net, on: mnist.test).accuracy
        let reference = ReferenceNet<Double>(net).accuracy(
            (0..<mnist.test.count * 784).map { Double(mnist.test.pixels[$0]) / 255 }, labels: mnist.test.labels.map(Int.init))
        print("test accuracy of the trained model: fast kernels \(fast), Float64 reference path \(reference), difference \(abs(fast - reference))")
        // Dense against sparse input (same bits), interleaved so both see the same machine.
        var denseConfig = config
        denseConfig.input = .dense
        var denseTimes: [Double] = [], sparseTimes: [Double] = []
        for _ in 0..<repeats {
            denseTimes.append(trainOnce(denseConfig, data: mnist.train, kernels: kernels, topology: topology).trainSeconds)
            sparseTimes.append(trainOnce(config, data: mnist.train, kernels: kernels, topology: topology).trainSeconds)
        }
        let dense = Stats(denseTimes), sparse = Stats(sparseTimes)
        print("--input dense against sparse, interleaved: dense median \(fixed(dense.median, 2)) s, sparse median \(fixed(sparse.median, 2)) s: sparse is \(fixed(dense.median / sparse.median, 2))x faster")
        // Peak resident memory of the CLI's default run with 8 workers, measured before any other
        // child process runs (RUSAGE_CHILDREN reports the largest child so far).
        let binary = repositoryRoot.appendingPathComponent(".build/release/ptrain").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            print("peak memory skipped: build ptrain first (swift build -c release)")
            return
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["--workers", "8", "--json"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        print("peak resident memory of `ptrain --workers 8`: \(usage.ru_maxrss / 1024) MB")
    }
}
