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
        abstract: "The default run against the FLOP floor and numpy, start-up time and peak memory, all in one run.")

    @Option(help: "Repeats per measurement (medians are reported).")
    var repeats = 5

    @Option(help: "Iterations of the default run.")
    var iterations = 10_000

    @Option(help: "Workers of the timed run (the acceptance target uses 2 on a 2-core machine).")
    var workers = 2

    func run() throws {
        let kernels = try KernelSet.best()
        let topology = Topology.discover()
        let cores = topology.usableCPUCount
        print("machine: \(cores) allowed CPU(s), kernels \(kernels.variant.summary)")

        // Start-up: decompress, validate and checksum the embedded MNIST, and build the sparse rows
        // the default run reads.
        let startup = Stats((0..<repeats).map { _ in seconds { _ = SparseImages(try! MNIST.loadEmbedded().train) } })
        let mnist = try MNIST.loadEmbedded()
        print("start-up (load + verify embedded MNIST + build its sparse rows): median \(fixed(startup.median, 3)) s (min \(fixed(startup.min, 3)), max \(fixed(startup.max, 3)))")
        let density = SparseImages.density(mnist.train, stride: 1)
        print("input: sparse (auto; density \(fixed(density, 3))): layer 1 multiplies only the non-zero pixels, so the run does fewer FLOPs than the dense floor below counts")

        var config = TrainingConfiguration()
        config.iterations = iterations
        config.workers = workers
        _ = trainOnce(config, data: mnist.train, kernels: kernels, topology: topology)  // warm-up
        // Each timed run is paired with a measurement of the FMA peak just before it, so a change
        // in the machine's load between runs moves the run and its floor alike.
        let flops = flopsPerIteration(widths: [784, 100, 10], batch: 100) * Double(iterations)
        var peaks: [Double] = [], runs: [Double] = []
        for _ in 0..<repeats {
            peaks.append(fmaPeak(threads: min(workers, cores), repeats: 1).median)
            runs.append(trainOnce(config, data: mnist.train, kernels: kernels, topology: topology).trainSeconds)
        }
        let peak = Stats(peaks), times = Stats(runs)
        let floor = flops / (peak.median * 1e9)
        let floorRatios = Stats(zip(runs, peaks).map { $0 / (flops / ($1 * 1e9)) })
        print("FMA peak on \(min(workers, cores)) core(s), measured before each timed run: median \(fixed(peak.median)) GFLOP/s (min \(fixed(peak.min)), max \(fixed(peak.max))); FLOP floor of \(iterations) iterations at the median: \(fixed(floor, 2)) s")
        let rate = Double(iterations * 100) / times.median
        // The vectorized exp/sigmoid/softmax against the Float64 reference path, on one trained model.
        let builder = RunBuilder(kernels: kernels, topology: topology)
        let net = builder.train(config, on: mnist.train).net
        let fast = builder.evaluate(net, on: mnist.test).accuracy
        let reference = ReferenceNet<Double>(net).accuracy(
            (0..<mnist.test.count * 784).map { Double(mnist.test.pixels[$0]) / 255 }, labels: mnist.test.labels.map(Int.init))
        print("test accuracy of the trained model: fast kernels \(fast), Float64 reference path \(reference), difference \(abs(fast - reference))")
        print("ptrain default run, \(workers) workers: median \(fixed(times.median, 2)) s (min \(fixed(times.min, 2)), max \(fixed(times.max, 2))), \(Int(rate)) samples/s, \(fixed(times.median / floor, 2))x the FLOP floor; paired with each run's own floor: median \(fixed(floorRatios.median, 2))x (min \(fixed(floorRatios.min, 2)), max \(fixed(floorRatios.max, 2)))")
        // The same run with layer one as dense GEMMs (same bits), interleaved with sparse runs so
        // both see the same machine.
        var denseConfig = config
        denseConfig.input = .dense
        var denseTimes: [Double] = [], sparseTimes: [Double] = []
        for _ in 0..<repeats {
            denseTimes.append(trainOnce(denseConfig, data: mnist.train, kernels: kernels, topology: topology).trainSeconds)
            sparseTimes.append(trainOnce(config, data: mnist.train, kernels: kernels, topology: topology).trainSeconds)
        }
        let dense = Stats(denseTimes), sparse = Stats(sparseTimes)
        print("the same run with --input dense, interleaved with sparse runs: dense median \(fixed(dense.median, 2)) s (\(fixed(dense.median / floor, 2))x the floor), sparse median \(fixed(sparse.median, 2)) s: sparse is \(fixed(dense.median / sparse.median, 2))x faster")

        // Peak resident memory of the CLI's default run with 8 workers, measured before any other
        // child process runs (RUSAGE_CHILDREN reports the largest child so far).
        let binary = repositoryRoot.appendingPathComponent(".build/release/ptrain").path
        if FileManager.default.isExecutableFile(atPath: binary) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["--workers", "8", "--json"]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            var usage = rusage()
            getrusage(RUSAGE_CHILDREN.rawValue, &usage)
            print("peak resident memory of `ptrain --workers 8`: \(usage.ru_maxrss / 1024) MB")
        } else {
            print("peak memory skipped: build ptrain first (swift build -c release)")
        }

        if let reason = NumpyPeer.unavailableReason {
            print(reason)
        } else {
            // The peer's fastest BLAS thread setting (one run each), then that setting alternated
            // with ptrain runs, so both see the same machine: the ratio of medians and the median
            // of the paired ratios.
            let probes = NumpyPeer.run(dtype: "float32", iterations: iterations, batchSize: 100, hidden: 100, threadSettings: Array(Set([1, cores])).sorted())
            for r in probes { print("numpy float32, \(r.threads) BLAS thread(s): \(fixed(r.train_seconds, 2)) s, \(Int(r.samples_per_second)) samples/s, test accuracy \(r.test_accuracy)") }
            if let best = probes.max(by: { $0.samples_per_second < $1.samples_per_second }), let threads = Int(best.threads) {
                var numpyRates: [Double] = [], ptrainRates: [Double] = []
                for _ in 0..<repeats {
                    guard let r = NumpyPeer.run(dtype: "float32", iterations: iterations, batchSize: 100, hidden: 100, threadSettings: [threads]).first else { break }
                    numpyRates.append(r.samples_per_second)
                    ptrainRates.append(Double(iterations * 100) / trainOnce(config, data: mnist.train, kernels: kernels, topology: topology).trainSeconds)
                }
                if !numpyRates.isEmpty {
                    let n = Stats(numpyRates), p = Stats(ptrainRates), paired = Stats(zip(ptrainRates, numpyRates).map { $0 / $1 })
                    print("alternating \(numpyRates.count) numpy float32 runs (\(threads) BLAS thread(s)) with ptrain runs (\(workers) workers): numpy median \(Int(n.median)) samples/s, ptrain median \(Int(p.median)) samples/s")
                    print("ptrain / numpy float32: \(fixed(p.median / n.median, 2))x (ratio of medians); paired ratios median \(fixed(paired.median, 2))x (min \(fixed(paired.min, 2)), max \(fixed(paired.max, 2)))")
                }
            }
        }
    }
}
