import ArgumentParser
import Dataset
import Foundation
import Kernels
import Model
import Parallel
import Plotting
import Training

struct ScalingBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Strong and weak scaling over workers 1, 2, 4, ... up to twice the CPUs, with the numpy peer in the same run.",
        discussion: "Writes scaling.csv, scaling.json and scaling.svg to --output.")

    @Option(help: "Runs per point, in rounds that run every worker count in turn (median, min and max are reported).")
    var repeats = 5

    @Option(help: "Folder for the CSV, JSON and SVG files.")
    var output = "Benchmarks/results"

    @Option(parsing: .upToNextOption, help: "Scenarios to run, of: default, heavy, deep, weak.")
    var scenarios = ["default", "heavy", "deep", "weak"]

    @Flag(help: "Skip the numpy peer.")
    var noNumpy = false

    @Flag(help: "Only redraw scaling.svg from the scaling.json in --output (no runs).")
    var replot = false

    struct Scenario {
        var key: String
        var name: String
        var network: BenchNetwork
        /// Global batch for a worker count.
        var batch: (Int) -> Int
        var iterations: Int
        var weak: Bool
    }

    typealias Document = Recorded<Results>

    struct Results: Codable {
        var points: [Point]
        var numpy: [NumpyResult]
        /// The machine's limits measured in the same run (absent in files from before they were).
        var limits: [Limit]?
        /// The core-to-core round trip before each counted round (absent in files from before it
        /// was measured).
        var rounds: [Round]?
    }

    /// One counted round: the round trip of a cache line between the first two CPUs measured just
    /// before it (`CoreRoundTrip`), and what the engine reached in it. On a shared virtual machine
    /// the round trip changes when the host moves the vCPUs (about 50-100 ns or about 400 ns, for
    /// minutes at a time), and every datum the workers pass between them pays it, so a run's
    /// speedup is read beside it.
    struct Round: Codable {
        var scenario: String
        /// "table" (every worker count in turn) or "limit" (1 worker, N workers, N independent runs).
        var part: String
        var round_trip_ns: Double
        /// N-worker samples/s over the round's 1-worker samples/s, for N = the CPU count.
        var speedup: Double
        /// The limit rounds only: N independent 1-worker runs over the round's 1-worker run.
        var independent_speedup: Double?
    }

    /// What the machine allows N workers, without the engine, measured in rounds of three runs
    /// minutes apart at most: one worker; N workers; N independent one-worker runs at once, one per
    /// CPU (`independentRuns`). Each round gives two speedups over its own one-worker run; the
    /// medians over the rounds are reported, so a change in the machine's load between rounds
    /// moves both alike.
    struct Limit: Codable {
        var scenario: String
        var cpus: Int
        /// Median over rounds of (independent runs' samples/s) / (one worker's): the best speedup
        /// any engine could show here.
        var speedup: Double
        /// Median over rounds of (N workers' samples/s) / (one worker's).
        var engine_speedup: Double
        /// FMA GFLOP/s on N threads over one thread, median of rounds (the same for every scenario).
        var fma_peak_ratio: Double
    }

    struct Point: Codable {
        var scenario: String
        var workers: Int
        var batch_size: Int
        /// The first hidden layer's width.
        var hidden: Int
        /// Every layer's width, input to classes (absent in files from before deep scenarios).
        var layers: [Int]?
        var iterations: Int
        var samples_per_second_median: Double
        var samples_per_second_min: Double
        var samples_per_second_max: Double
        /// Median samples/s over one worker's median samples/s (the ratio of medians).
        var speedup: Double
        /// Median over rounds of (this count's samples/s) / (one worker's in the same round): the
        /// runs of a round are minutes apart at most, so a slow or fast spell of the shared machine
        /// that reaches both cancels (absent in files from before it was measured).
        var speedup_paired: Double?
        var efficiency: Double
        /// Per iteration, per worker, microseconds (from the median run's PhaseTimes).
        var compute_us: Double
        var reduction_us: Double
        var synchronisation_us: Double
        var bookkeeping_us: Double
    }

    func validate() throws {
        let known = ["default", "heavy", "deep", "weak"]
        for name in scenarios where !known.contains(name) {
            throw ValidationError("--scenarios: unknown scenario '\(name)'; use some of \(known.joined(separator: ", "))")
        }
    }

    func run() throws {
        if replot {
            let document = try JSONDecoder().decode(Document.self, from: Data(contentsOf: URL(fileURLWithPath: output + "/scaling.json")))
            try plot(document.points)
            return
        }
        let kernels = try KernelSet.best()
        let topology = Topology.discover()
        let mnist = try MNIST.loadEmbedded()
        // Under a cgroup CPU quota, the CPUs it lets the engine use (`Placement`).
        let cores = topology.usableCPUCount
        // 1, 2, 4, ... up to twice the CPUs, and at least up to 8 (the engine's oversubscription check).
        var counts = [1]
        while counts.last! * 2 <= max(2 * cores, 8) { counts.append(counts.last! * 2) }
        if counts.last! < 2 * cores { counts.append(2 * cores) }
        print("scaling on \(cores) allowed CPU(s) (\(topology.nodes.count) NUMA node(s), \(topology.source)), kernels \(kernels.variant.rawValue), \(repeats) runs per point")
        let all = [
            Scenario(key: "default", name: "strong: default run (batch 100, hidden 100)", network: .lecture, batch: { _ in 100 }, iterations: 10_000, weak: false),
            Scenario(key: "heavy", name: "strong: heavy (batch 1000, hidden 1024)", network: .heavy, batch: { _ in 1000 }, iterations: 200, weak: false),
            Scenario(key: "deep", name: "strong: deep (batch 512, 784-1024-1024-1024-10 relu)", network: .deep, batch: { _ in 512 }, iterations: 20, weak: false),
            Scenario(key: "weak", name: "weak: 100 rows per worker (hidden 100)", network: .lecture, batch: { 100 * $0 }, iterations: 2000, weak: true),
        ]
        // The CPUs the engine's N = `cores` workers are pinned to: the limit rounds' independent runs use the same.
        let cpus = Placement(topology: topology, workers: cores, policy: .spread).slots.compactMap(\.cpu)
        let fmaRatio = Stats((0..<repeats).map { _ in
            fmaPeak(threads: cores, repeats: 1).median / fmaPeak(threads: 1, repeats: 1).median
        }).median
        print("FMA loop on \(cores) threads at once: \(fixed(fmaRatio, 2))x the GFLOP/s of one thread (median of \(repeats) rounds)")
        var points: [Point] = [], limits: [Limit] = [], rounds: [Round] = []
        /// The first two CPUs' round trip (`CoreRoundTrip`; 0 on a one-CPU machine, where nothing crosses).
        func roundTrip() throws -> Double {
            guard cpus.count > 1 else { return 0 }
            guard let trip = CoreRoundTrip.nanoseconds(between: cpus[0], and: cpus[1], limit: .seconds(10)) else {
                throw ValidationError("could not measure the round trip between CPUs \(cpus[0]) and \(cpus[1]): pinning refused, or a CPU busy for 10 s")
            }
            return trip
        }
        for s in all where scenarios.contains(s.key) {
            print("\n\(s.name), \(s.iterations) iterations")
            print("workers  batch   samples/s median      min       max   speedup  paired  efficiency  | per iteration per worker (µs): compute  reduction  sync  other")
            func configuration(workers n: Int) -> TrainingConfiguration {
                s.network.configuration(batch: s.batch(n), iterations: s.iterations, workers: n)
            }
            // Rounds: each round runs every worker count once, in turn, so a change in the shared
            // machine's speed between minutes reaches all counts alike instead of whichever count
            // ran then. The first round is a warm-up and is not counted.
            var runs = [Int: [TrainingOutcome]]()
            var tableTrips: [Double] = []
            for round in 0...repeats {
                if round > 0 { tableTrips.append(try roundTrip()) }
                for n in counts {
                    let outcome = trainOnce(configuration(workers: n), data: mnist.train, kernels: kernels, topology: topology).outcome
                    if round > 0 { runs[n, default: []].append(outcome) }
                }
            }
            var base = 0.0, baseRates: [Double] = []
            for n in counts {
                let config = configuration(workers: n)
                let outcomes = runs[n]!
                let rates = outcomes.map { Double(s.iterations * config.batchSize) / $0.trainSeconds }
                let stats = Stats(rates)
                let median = outcomes.sorted { $0.trainSeconds < $1.trainSeconds }[outcomes.count / 2]
                if n == 1 { (base, baseRates) = (stats.median, rates) }
                let speedup = stats.median / base
                let paired = Stats(zip(rates, baseRates).map { $0 / $1 }).median
                let efficiency = s.weak ? stats.median / (base * Double(n)) : speedup / Double(n)
                let us = 1e6 / Double(s.iterations)
                let p = Point(scenario: s.name, workers: n, batch_size: config.batchSize, hidden: s.network.hidden[0],
                              layers: s.network.widths, iterations: s.iterations,
                              samples_per_second_median: stats.median, samples_per_second_min: stats.min, samples_per_second_max: stats.max,
                              speedup: speedup, speedup_paired: paired, efficiency: efficiency,
                              compute_us: median.phases.compute * us, reduction_us: median.phases.reduction * us,
                              synchronisation_us: median.phases.synchronisation * us, bookkeeping_us: median.phases.bookkeeping * us)
                points.append(p)
                print(String(format: "%7d %6d %14.0f %10.0f %9.0f %9.2f %7.2f %11.2f  | %40.1f %10.1f %5.1f %6.1f",
                             n, config.batchSize, stats.median, stats.min, stats.max, speedup, paired, efficiency,
                             p.compute_us, p.reduction_us, p.synchronisation_us, p.bookkeeping_us))
                if n == cores && cores > 1 {
                    let perRound = zip(rates, baseRates).map { $0 / $1 }
                    rounds += zip(tableTrips, perRound).map { Round(scenario: s.name, part: "table", round_trip_ns: $0, speedup: $1) }
                }
            }
            if cores > 1 {
                print(roundTripLine(rounds.filter { $0.scenario == s.name && $0.part == "table" }, cpus: cpus, workers: cores))
            }
            // The limit: as many independent one-worker runs as CPUs, at once, one per CPU, in
            // rounds with a one-worker and an N-worker run of the engine.
            guard !s.weak, cores > 1 else { continue }
            let config = configuration(workers: 1)
            var many = config
            many.workers = cores
            let samples = Double(s.iterations * config.batchSize)
            var engine: [Double] = [], limit: [Double] = []
            for _ in 0..<repeats {
                let trip = try roundTrip()
                let one = samples / trainOnce(config, data: mnist.train, kernels: kernels, topology: topology).trainSeconds
                engine.append(samples / trainOnce(many, data: mnist.train, kernels: kernels, topology: topology).trainSeconds / one)
                limit.append(independentRuns(config, cpus: cpus, data: mnist.train, kernels: kernels, topology: topology) / one)
                rounds.append(Round(scenario: s.name, part: "limit", round_trip_ns: trip, speedup: engine.last!, independent_speedup: limit.last!))
            }
            let l = Limit(scenario: s.name, cpus: cores, speedup: Stats(limit).median, engine_speedup: Stats(engine).median,
                          fma_peak_ratio: fmaRatio)
            limits.append(l)
            print(String(format: "limit, %d rounds of (1 worker, %d workers, %d independent 1-worker runs at once, one per CPU): the independent runs %.2fx one worker (min %.2f, max %.2f), %d workers %.2fx (%.0f%% of the limit)",
                         repeats, cores, cores, l.speedup, limit.min()!, limit.max()!, cores, l.engine_speedup, 100 * l.engine_speedup / l.speedup))
            print(roundTripLine(rounds.filter { $0.scenario == s.name && $0.part == "limit" }, cpus: cpus, workers: cores))
        }

        var peers: [NumpyResult] = []
        let defaultRun = points.filter { $0.scenario.hasPrefix("strong: default") }
        if noNumpy || defaultRun.isEmpty {
            print("\nnumpy peer skipped (\(noNumpy ? "--no-numpy" : "no default-run scenario"))")
        } else if let reason = NumpyPeer.unavailableReason {
            print("\n\(reason)")
        } else {
            print("\nnumpy peer (Benchmarks/reference/two_layer_net.py), default run, fastest of BLAS threads 1 and \(cores):")
            let ptrainBest = defaultRun.map(\.samples_per_second_median).max()!
            for dtype in ["float32", "float64"] {
                let results = NumpyPeer.run(dtype: dtype, iterations: 10_000, batchSize: 100, hidden: [100], threadSettings: Array(Set([1, cores])).sorted())
                guard let best = results.max(by: { $0.samples_per_second < $1.samples_per_second }) else { continue }
                peers.append(best)
                print(String(format: "  %@ (%@ threads): %.0f samples/s, test accuracy %.4f; ptrain's best default-run throughput is %.2fx",
                             dtype, best.threads, best.samples_per_second, best.test_accuracy, ptrainBest / best.samples_per_second))
            }
        }
        print("\n" + ScalingModel(points: points, cores: cores).report())
        try write(points: points, peers: peers, limits: limits, rounds: rounds)
    }

    /// A round trip above this many nanoseconds means the two CPUs share no level-3 cache: on the
    /// shared hosts this project runs on the probe reads about 50-250 ns while the vCPUs sit on
    /// cores that share one and 350-550 ns while they do not (the `rounds` of scaling.json), and
    /// 300 ns lies between the two states.
    static let sharedCacheRoundTripLimit = 300.0

    /// The rounds' round trips beside what the engine reached in each, in round order, then the
    /// median speedup of the rounds on each side of `sharedCacheRoundTripLimit`: the run's median
    /// depends on how its rounds fell between the two, which the host decides.
    func roundTripLine(_ rounds: [Round], cpus: [Int], workers: Int) -> String {
        let pairs = rounds.map { String(format: "%.0f ns %.2fx", $0.round_trip_ns, $0.speedup) }
        let near = rounds.filter { $0.round_trip_ns <= Self.sharedCacheRoundTripLimit }
        let far = rounds.filter { $0.round_trip_ns > Self.sharedCacheRoundTripLimit }
        func median(_ part: [Round]) -> String {
            part.isEmpty ? "no round" : String(format: "%.2fx (%d rounds)", Stats(part.map(\.speedup)).median, part.count)
        }
        return "  core-to-core round trip (CPUs \(cpus[0]) and \(cpus[1])) before each round, and \(workers) workers' speedup in it: "
            + pairs.joined(separator: ", ")
            + String(format: "\n  median speedup of the rounds at <= %.0f ns (a shared level-3 cache): %@; above: %@",
                     Self.sharedCacheRoundTripLimit, median(near), median(far))
    }

    func write(points: [Point], peers: [NumpyResult], limits: [Limit], rounds: [Round]) throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var csv = "scenario,workers,batch_size,hidden,iterations,samples_per_second_median,samples_per_second_min,samples_per_second_max,speedup,speedup_paired,efficiency,compute_us,reduction_us,synchronisation_us,bookkeeping_us\n"
        for p in points {
            csv += "\"\(p.scenario)\",\(p.workers),\(p.batch_size),\(p.hidden),\(p.iterations),\(p.samples_per_second_median),\(p.samples_per_second_min),\(p.samples_per_second_max),\(p.speedup),\(p.speedup_paired.map { "\($0)" } ?? ""),\(p.efficiency),\(p.compute_us),\(p.reduction_us),\(p.synchronisation_us),\(p.bookkeeping_us)\n"
        }
        try csv.write(toFile: output + "/scaling.csv", atomically: true, encoding: .utf8)
        try Document(Results(points: points, numpy: peers, limits: limits, rounds: rounds)).write(to: output + "/scaling.json")
        try plot(points)
        print("wrote \(output)/scaling.csv, scaling.json, scaling.svg")
    }

    func plot(_ points: [Point]) throws {
        let colors = ["#1f77b4", "#d62728", "#9467bd", "#2ca02c"]
        let scenarios = uniqueScenarios(points)
        func series(_ value: (Point) -> Double) -> [LineChart.Series] {
            scenarios.enumerated().map { i, s in
                LineChart.Series(name: String(s.split(separator: "(").first!).trimmingCharacters(in: .whitespaces), points: points.filter { $0.scenario == s }.map { (Double($0.workers), value($0)) },
                                 color: colors[i % colors.count], markers: true)
            }
        }
        let throughput = LineChart(title: "Throughput (relative to 1 worker)", xLabel: "workers", yLabel: "speedup (samples/s ÷ 1-worker samples/s)",
                                   series: series { p in p.samples_per_second_median / points.first { $0.scenario == p.scenario && $0.workers == 1 }!.samples_per_second_median },
                                   yFromZero: true)
        let efficiency = LineChart(title: "Parallel efficiency", xLabel: "workers", yLabel: "efficiency", series: series(\.efficiency), yFromZero: true)
        try LineChart.svg([throughput, efficiency]).write(toFile: output + "/scaling.svg", atomically: true, encoding: .utf8)
    }
}

/// Scenario names in first-seen order.
func uniqueScenarios(_ points: [ScalingBenchmark.Point]) -> [String] {
    var seen: [String] = []
    for p in points where !seen.contains(p.scenario) { seen.append(p.scenario) }
    return seen
}
