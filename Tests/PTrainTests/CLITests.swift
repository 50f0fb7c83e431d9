import Foundation
import Parallel
import TestSupport
import XCTest

/// ptrain as a user runs it: exit statuses, error lines, JSON.
final class CLITests: XCTestCase {
    func assertUsageError(_ arguments: [String], mentions phrase: String, line: UInt = #line) throws {
        let r = try runPTrain(arguments)
        XCTAssertEqual(r.status, 64, "usage errors exit with EX_USAGE; stderr: \(r.stderr)", line: line)
        XCTAssertFalse(r.signaled, line: line)
        XCTAssert(r.stderr.contains(phrase), "stderr lacks \"\(phrase)\": \(r.stderr)", line: line)
        XCTAssert(r.stderr.contains("Usage:"), "argument-parser's usage follows the error", line: line)
        XCTAssertEqual(r.stdout, "", line: line)
    }

    func testInvalidValuesAreUsageErrors() throws {
        try assertUsageError(["--workers", "0"], mentions: "--workers must be between 1 and 1024")
        try assertUsageError(["--workers", "2000"], mentions: "--workers must be between 1 and 1024")
        try assertUsageError(["--workers", "101"], mentions: "exceeds --batch-size 100")
        try assertUsageError(["--learning-rate=-0.1"], mentions: "--learning-rate must be a positive number")
        try assertUsageError(["--iterations", "0"], mentions: "--iterations must be at least 1")
        try assertUsageError(["--iterations", "5000000000"], mentions: "--iterations must be at most 1000000000")
        try assertUsageError(["--batch-size", "70000", "--workers", "1"], mentions: "exceeds the 60000 training images")
        try assertUsageError(["--placement", "diagonal"], mentions: "diagonal")
        try assertUsageError(["--frobnicate"], mentions: "Unknown option")
        try assertUsageError(["--input", "rle"], mentions: "rle")
        try assertUsageError(["--trace-from", "3"], mentions: "--trace-from and --trace-count need --trace PATH")
        try assertUsageError(["--trace", "t.json", "--iterations", "50", "--trace-from", "51"], mentions: "--trace-from 51 is after the run's last iteration")
        try assertUsageError(["--trace", "t.json", "--trace-count", "0"], mentions: "--trace-count must be between 1 and 10000")
        try assertUsageError(["--hidden", "0,5"], mentions: "--hidden 0,5: widths must be between 1 and 8192, got 0.")
        try assertUsageError(["--hidden", "512,"], mentions: "--hidden \"512,\" has an empty width (a stray comma?)")
        try assertUsageError(["--hidden", "9000"], mentions: "widths must be between 1 and 8192, got 9000")
        try assertUsageError(["--hidden", "8,8,8,8,8,8,8,8,8"], mentions: "needs 1 to 8 hidden layer widths, got 9")
        try assertUsageError(["--hidden", "64x64"], mentions: "\"64x64\" is not a whole number")
        try assertUsageError(["--activation", "swish"], mentions: "'sigmoid', 'relu' or 'tanh'")
        try assertUsageError(["--init", "xavier"], mentions: "'lecture', 'he' or 'glorot'")
        try assertUsageError(["--iterations", "10", "--epochs", "2"], mentions: "--iterations and --epochs both set the run's length; give one of them.")
        try assertUsageError(["--epochs", "0"], mentions: "--epochs must be at least 1, got 0.")
        try assertUsageError(["--optimizer", "rmsprop"], mentions: "'sgd', 'momentum', 'nesterov', 'adam' or 'adamw'")
        try assertUsageError(["--momentum", "1"], mentions: "--momentum must be at least 0 and below 1, got 1.0.")
        try assertUsageError(["--beta2=-0.5"], mentions: "--beta2 must be at least 0 and below 1")
        try assertUsageError(["--epsilon", "0"], mentions: "--epsilon must be a positive number")
        try assertUsageError(["--weight-decay=-1"], mentions: "--weight-decay must be 0 or a positive number")
        try assertUsageError(["--schedule", "step"], mentions: "--schedule step needs --decay-every N")
        try assertUsageError(["--decay-every", "5"], mentions: "--decay-every and --decay-factor belong to --schedule step")
        try assertUsageError(["--schedule", "step", "--decay-every", "5", "--decay-factor", "2"], mentions: "--decay-factor must be above 0 and at most 1")
        try assertUsageError(["--schedule", "exponential"], mentions: "'constant', 'step' or 'cosine'")
        try assertUsageError(["--warmup", "200", "--iterations", "100"], mentions: "--warmup 200 is not shorter than the run (100 iterations)")
        try assertUsageError(["--eval-every", "sometimes"], mentions: "--eval-every must be 0 or more iterations, or epoch")
    }

    /// An output file whose folder is missing fails at once, naming the flag, before any training.
    func testOutputFolderIsCheckedBeforeTraining() throws {
        for flag in ["--checkpoint", "--metrics", "--plot", "--trace"] {
            let r = try runPTrain([flag, "/nonexistent-ptrain-folder/out", "--iterations", "1000000"])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssert(r.stderr.contains("\(flag) /nonexistent-ptrain-folder/out: the folder /nonexistent-ptrain-folder does not exist"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
    }

    /// `--trace`: a Perfetto/Chrome trace with one named track per worker and one slice per work
    /// item: every item of each traced iteration exactly once, none overlapping another on its
    /// worker, and the run's bits unchanged.
    func testTraceFile() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("trace.json").path
        let traced = try json(["--iterations", "60", "--workers", "3", "--trace", path, "--trace-from", "20", "--trace-count", "5"])
        let plain = try json(["--iterations", "60", "--workers", "3"])
        XCTAssertEqual(traced["params_sha256"] as? String, plain["params_sha256"] as? String)
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let events = try XCTUnwrap(file?["traceEvents"] as? [[String: Any]])
        let tracks = events.filter { $0["ph"] as? String == "M" }.compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
        XCTAssertEqual(tracks.count, 3)
        XCTAssert(tracks.allSatisfy { $0.hasPrefix("worker ") }, "\(tracks)")
        let slices = events.filter { $0["ph"] as? String == "X" }
        // One phase per iteration on MNIST (sparse input), then the phase's serial step. The item
        // sizes depend on the workers that can run at once (Schedule), so the items are checked by
        // what they cover: W1's 784 rows, x·W1's 100 batch rows once per input k-block, the
        // row items' 100 rows and the staged 100 rows once each, W2 and the biases once.
        var covered: [Int: [String: [Int]]] = [:]
        for e in slices where (e["args"] as? [String: Any])?["item"] != nil {
            let iteration = try XCTUnwrap((e["args"] as? [String: Any])?["iteration"] as? Int)
            let name = try XCTUnwrap(e["name"] as? String)
            let kind = name.hasPrefix("x·W1") ? String(name.prefix { $0 != "," }) : String(name.prefix { $0 != " " })
            let bounds = name.split(separator: " ").last!.components(separatedBy: "..<").compactMap { Int($0) }
            covered[iteration, default: [:]][kind, default: []] += bounds.count == 2 ? Array(bounds[0]..<bounds[1]) : [0]
        }
        XCTAssertEqual(Set(covered.keys), Set(20..<25))
        for (iteration, kinds) in covered {
            let expected: [String: [Int]] = ["W1": Array(0..<784), "W2": Array(0..<100), "biases": [0], "x·W1 block 0": Array(0..<100),
                                             "x·W1 block 1": Array(0..<100), "rows": Array(0..<100), "stage": Array(0..<100)]
            XCTAssertEqual(kinds.mapValues { $0.sorted() }, expected, "iteration \(iteration)")
        }
        // Every item index of an iteration once (checked below), plus its serial step.
        let perIteration = slices.count / 5 - 1
        var seen: [Int: Set<Int>] = [:]
        var itemsEnd: [Int: Double] = [:], nextStart: [Int: Double] = [:]
        var serialSteps: [Int: (start: Double, end: Double)] = [:]
        var byWorker: [Int: [(start: Double, end: Double)]] = [:]
        for e in slices {
            let args = try XCTUnwrap(e["args"] as? [String: Any])
            let iteration = try XCTUnwrap(args["iteration"] as? Int)
            XCTAssert((20..<25).contains(iteration), "\(e)")
            let start = try XCTUnwrap(e["ts"] as? Double), duration = try XCTUnwrap(e["dur"] as? Double)
            XCTAssertGreaterThanOrEqual(duration, 0)
            byWorker[try XCTUnwrap(e["tid"] as? Int), default: []].append((start, start + duration))
            if let item = args["item"] as? Int {
                XCTAssert(seen[iteration, default: []].insert(item).inserted, "item \(item) of iteration \(iteration) twice")
                XCTAssert(["compute", "reduction"].contains(e["cat"] as? String), "\(e)")
                itemsEnd[iteration] = max(itemsEnd[iteration] ?? 0, start + duration)
                nextStart[iteration - 1] = min(nextStart[iteration - 1] ?? .infinity, start)
            } else {
                XCTAssertEqual(e["name"] as? String, "serial step")
                XCTAssertEqual(e["cat"] as? String, "bookkeeping")
                XCTAssertNil(serialSteps.updateValue((start, start + duration), forKey: iteration), "two serial steps in iteration \(iteration)")
            }
        }
        XCTAssertEqual(seen.values.map(\.count), Array(repeating: perIteration, count: 5))
        // Each serial step runs after its iteration's last item and before the next one's first.
        XCTAssertEqual(Set(serialSteps.keys), Set(20..<25))
        for (iteration, step) in serialSteps {
            XCTAssertGreaterThanOrEqual(step.start + 1e-3, try XCTUnwrap(itemsEnd[iteration]), "iteration \(iteration)")
            if let next = nextStart[iteration] { XCTAssertLessThanOrEqual(step.end, next + 1e-3, "iteration \(iteration)") }
        }
        for (worker, spans) in byWorker {
            XCTAssert((0..<3).contains(worker))
            let sorted = spans.sorted { $0.start < $1.start }
            for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertLessThanOrEqual(a.end, b.start + 1e-3, "worker \(worker) ran two items at once") }
        }
    }

    func testBadDataFolderGivesOneLineAndStatusOne() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for stem in ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try FileManager.default.copyItem(at: embeddedMNISTFolder.appendingPathComponent(stem + ".gz"), to: dir.appendingPathComponent(stem + ".gz"))
        }
        var labels = [UInt8](repeating: 1, count: 60_000)
        labels[7] = 200
        try Data(idxBytes(dimensions: [60_000], elements: labels)).write(to: dir.appendingPathComponent("train-labels-idx1-ubyte"))
        let r = try runPTrain(["--data", dir.path, "--iterations", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertFalse(r.signaled)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr)
        XCTAssert(r.stderr.contains("train-labels-idx1-ubyte: label 200 at index 7 is outside 0-9"), r.stderr)

        let missing = try runPTrain(["--data", dir.path + "/nope", "--iterations", "1"])
        XCTAssertEqual(missing.status, 1)
        XCTAssert(missing.stderr.contains("is not a folder"), missing.stderr)
    }

    func json(_ arguments: [String], prefix: [String] = []) throws -> [String: Any] {
        let r = try runPTrain(["--json"] + arguments, prefix: prefix)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "", "no progress line when stderr is not a terminal")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return try XCTUnwrap(object, "stdout is exactly one JSON object: \(r.stdout)")
    }

    func testJSONReportAndReproducibility() throws {
        let a = try json(["--iterations", "200", "--workers", "2"])
        for key in ["test_accuracy", "final_loss", "iterations", "batch_size", "layers", "activation", "init", "learning_rate", "seed",
                    "workers", "train_seconds", "samples_per_second", "params_sha256", "input"] {
            XCTAssertNotNil(a[key], "missing \(key)")
        }
        XCTAssertEqual(a["layers"] as? [Int], [784, 100, 10])
        XCTAssertEqual(a["activation"] as? String, "sigmoid")
        XCTAssertEqual(a["init"] as? String, "lecture")
        XCTAssertEqual(a["optimizer"] as? String, "sgd")
        XCTAssertEqual(a["schedule"] as? String, "constant")
        XCTAssertEqual(a["epochs"] as? Double, 200.0 * 100 / 60_000)
        XCTAssertEqual(a["iterations"] as? Int, 200)
        XCTAssertEqual(a["learning_rate"] as? Double, 0.1)
        XCTAssertEqual((a["params_sha256"] as? String)?.count, 64)
        XCTAssertGreaterThan(a["test_accuracy"] as? Double ?? 0, 0.3, "200 iterations reach about 0.55; chance is 0.1")
        let b = try json(["--iterations", "200", "--workers", "3"])
        XCTAssertEqual(a["params_sha256"] as? String, b["params_sha256"] as? String)
        XCTAssertEqual(a["input"] as? String, "sparse", "MNIST is 19% non-zero: auto reads it sparse")
        let dense = try json(["--iterations", "200", "--input", "dense"])
        XCTAssertEqual(dense["input"] as? String, "dense")
        XCTAssertEqual(dense["params_sha256"] as? String, a["params_sha256"] as? String, "both inputs give the same bits")
        let c = try json(["--iterations", "200", "--seed", "2"])
        XCTAssertNotEqual(a["params_sha256"] as? String, c["params_sha256"] as? String)
        // One allowed CPU, four workers: same bits, no deadlock.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") {
            let pinned = try json(["--iterations", "200", "--workers", "4"], prefix: ["taskset", "-c", "0"])
            XCTAssertEqual(pinned["params_sha256"] as? String, a["params_sha256"] as? String)
        }
    }

    /// Fashion-MNIST from Debian's dataset-fashion-mnist (CI installs it): another real IDX dataset
    /// through --data. Skipped where the package is not installed.
    func testFashionMNISTThroughData() throws {
        let folder = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: folder) else { throw XCTSkip("\(folder) not installed (apt-get install dataset-fashion-mnist)") }
        let r = try json(["--data", folder, "--iterations", "500", "--workers", "2"])
        XCTAssertEqual(r["dataset"] as? String, folder)
        // Chance is 0.1; the lecture's net reaches about 0.7 on Fashion-MNIST after 500 iterations.
        XCTAssertGreaterThan(r["test_accuracy"] as? Double ?? 0, 0.5)
    }

    func testHelpListsTheOptions() throws {
        let r = try runPTrain(["train", "--help"])
        XCTAssertEqual(r.status, 0)
        for option in ["--workers", "--iterations", "--epochs", "--batch-size", "--hidden", "--activation", "--init", "--optimizer",
                       "--learning-rate", "--momentum", "--beta1", "--beta2", "--epsilon", "--weight-decay", "--schedule", "--warmup",
                       "--decay-every", "--decay-factor", "--seed", "--data", "--json", "--placement", "--sampling", "--input"] {
            XCTAssert(r.stdout.contains(option), "help lacks \(option)")
        }
    }

    func testTopologyCommand() throws {
        let r = try runPTrain(["topology", "--workers", "3"])
        XCTAssertEqual(r.status, 0)
        XCTAssert(r.stdout.contains("node 0: cpus"), r.stdout)
        XCTAssert(r.stdout.contains("kernels: "), r.stdout)
        XCTAssert(r.stdout.contains("worker 2: cpu"), r.stdout)
    }

    func testTopologyProbe() throws {
        let cpus = Topology.discover().nodes.flatMap(\.cpus)
        let r = try runPTrain(["topology", "--workers", "2", "--probe"])
        XCTAssertEqual(r.status, 0, r.stderr)
        if cpus.count >= 2 {
            XCTAssert(r.stdout.contains("cache-line round trip from cpu \(cpus[0])"), r.stdout)
            XCTAssertNotNil(r.stdout.range(of: #"\n  cpu \#(cpus[1]): [0-9]+ ns"#, options: .regularExpression), r.stdout)
        } else {
            XCTAssert(r.stdout.contains("round trips: not measured (the plan's workers share one CPU)"), r.stdout)
        }
        let unpinned = try runPTrain(["topology", "--workers", "2", "--probe", "--placement", "none"])
        XCTAssert(unpinned.stdout.contains("round trips: not measured (--placement none pins no worker to a CPU)"), unpinned.stdout)
    }

    /// PTRAIN_TOPOLOGY plans for a simulated machine: `topology` shows its plan, training on it
    /// gives the real machine's bits, and a malformed value is a one-line error naming the variable.
    func testSimulatedTopologyThroughTheEnvironment() throws {
        let simulated = ["PTRAIN_TOPOLOGY": "4x16"]
        let plan = try runPTrain(["topology", "--workers", "6", "--probe"], environment: simulated)
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssert(plan.stdout.contains("topology (simulated by PTRAIN_TOPOLOGY=4x16"), plan.stdout)
        XCTAssert(plan.stdout.contains("node 3: cpus 48,"), plan.stdout)
        XCTAssert(plan.stdout.contains("worker 5: cpu 17, node 1"), plan.stdout)
        XCTAssert(plan.stdout.contains("round trips: not measured (the topology is simulated"), plan.stdout)
        let reference = try json(["--iterations", "120", "--hidden", "40,24", "--batch-size", "60"])
        for (workers, layout) in [("40", "4x16"), ("60", "8x8")] {
            let r = try runPTrain(["--json", "--iterations", "120", "--hidden", "40,24", "--batch-size", "60", "--workers", workers],
                                  environment: ["PTRAIN_TOPOLOGY": layout])
            XCTAssertEqual(r.status, 0, r.stderr)
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            XCTAssertEqual(object?["params_sha256"] as? String, reference["params_sha256"] as? String, "\(workers) workers on \(layout)")
        }
        let bad = try runPTrain(["--iterations", "1"], environment: ["PTRAIN_TOPOLOGY": "4by16"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1, bad.stderr)
        XCTAssert(bad.stderr.contains("PTRAIN_TOPOLOGY=4by16: expected NODESxCPUS"), bad.stderr)
    }

    /// A ptrain built without the MPI trait, started as one of several ranks (what mpirun's
    /// environment says), refuses instead of running the same training several times over; as
    /// rank 1 it leaves the usage error to rank 0.
    func testBuildWithoutMPIRefusesToRunAsSeveralRanks() throws {
        let r = try runPTrain(["--iterations", "1"], environment: ["OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "0"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssert(r.stderr.contains("built without MPI") && r.stderr.contains("--traits MPI"), r.stderr)
        let usage = try runPTrain(["--iterations", "0"], environment: ["OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "1"])
        XCTAssertEqual(usage.status, 64)
        XCTAssertEqual(usage.stderr, "")
        let alone = try runPTrain(["--iterations", "1", "--json"], environment: ["OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"])
        XCTAssertEqual(alone.status, 0, alone.stderr)
    }
}
