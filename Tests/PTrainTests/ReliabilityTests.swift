import Checkpoint
import Foundation
import Model
import TestSupport
import XCTest

/// Interruption, resume, crash safety and divergence, through the CLI as a user meets them.
final class ReliabilityTests: XCTestCase {
    func digest(_ r: CommandResult, line: UInt = #line) throws -> String {
        XCTAssertEqual(r.status, 0, r.stderr, line: line)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return try XCTUnwrap(object?["params_sha256"] as? String, line: line)
    }

    /// Starts ptrain with `stderr` and returns once it has written a new checkpoint at `checkpoint`
    /// (so training is running, and its signal handling installed, whatever the machine's start-up time).
    func startAndAwaitCheckpoint(_ arguments: [String], checkpoint: String, stderr: Any = FileHandle.nullDevice) throws -> Process {
        func modified() -> Date? { (try? FileManager.default.attributesOfItem(atPath: checkpoint))?[.modificationDate] as? Date }
        let before = modified()
        let process = Process()
        process.executableURL = ptrainExecutable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderr
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while modified() == before && process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
        return process
    }

    /// `startAndAwaitCheckpoint`, then waits `delay` more seconds, sends `signal`, and returns the
    /// finished process.
    func runAndSignal(_ arguments: [String], checkpoint: String, signal: Int32, after delay: Double) throws -> Process {
        let process = try startAndAwaitCheckpoint(arguments, checkpoint: checkpoint)
        Thread.sleep(forTimeInterval: delay)
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process
    }

    /// Runs `arguments` (which write `checkpoint` periodically), sends SIGINT at a random moment
    /// up to `maxDelay` ms after its first checkpoint, and returns the checkpoint of the stopped
    /// run (exit status 75). Skips when the run finished before the signal arrived.
    func interruptAtRandom(_ arguments: [String], checkpoint: String, maxDelay: Int) throws -> (saved: TrainingCheckpoint, note: String) {
        var random = TestRandom(seed: UInt64(Date().timeIntervalSince1970))
        let delay = Double(random.int(below: maxDelay)) / 1000
        let process = try runAndSignal(arguments, checkpoint: checkpoint, signal: SIGINT, after: delay)
        guard process.terminationStatus == 75 else {
            XCTAssertEqual(process.terminationStatus, 0, "SIGINT \(delay) s after the first checkpoint (seed \(random.seed))")
            throw XCTSkip("the run finished before the signal arrived (SIGINT \(delay) s after the first checkpoint): nothing to resume")
        }
        let saved = try TrainingCheckpoint.read(checkpoint)
        return (saved, "interrupted at iteration \(saved.iteration) (SIGINT after \(delay) s)")
    }

    func testInterruptThenResumeWithOtherWorkersEqualsUninterrupted() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("run.safetensors").path
        let common = ["--iterations", "4000", "--json"]
        let uninterrupted = try digest(try runPTrain(common + ["--workers", "2"]))
        let (saved, note) = try interruptAtRandom(common + ["--workers", "1", "--checkpoint", path, "--checkpoint-every", "200"], checkpoint: path, maxDelay: 800)
        XCTAssertLessThan(saved.iteration, 4000)
        let resumed = try digest(try runPTrain(common + ["--workers", "3", "--placement", "compact", "--resume", path]))
        XCTAssertEqual(resumed, uninterrupted, note)
    }

    /// Issue 21's acceptance, through the CLI: a three-hidden-layer tanh net ends with one digest
    /// for workers 1, 2, 3 and 8, every placement, and a SIGINT then a resume at another worker
    /// count; and Python, reading the resumed run's checkpoint, finds the accuracy ptrain reports.
    func testDeepNetSameBitsForAnyWorkersPlacementAndResume() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("deep.safetensors").path
        let common = ["--hidden", "128,64,32", "--activation", "tanh", "--init", "glorot", "--iterations", "3000", "--json"]
        let reference = try digest(try runPTrain(common + ["--workers", "1"]))
        for workers in ["2", "3", "8"] {
            XCTAssertEqual(try digest(try runPTrain(common + ["--workers", workers])), reference, "\(workers) workers")
        }
        for placement in ["spread", "compact", "none"] {
            XCTAssertEqual(try digest(try runPTrain(common + ["--workers", "3", "--placement", placement])), reference, placement)
        }
        let (saved, note) = try interruptAtRandom(common + ["--workers", "2", "--checkpoint", path, "--checkpoint-every", "100"], checkpoint: path, maxDelay: 400)
        XCTAssertEqual(saved.net.spec, NetworkSpec(input: 784, hidden: [128, 64, 32], output: 10, activation: .tanh, initialization: .glorot))
        let resumed = try runPTrain(common + ["--workers", "8", "--placement", "compact", "--resume", path, "--checkpoint", path])
        XCTAssertEqual(try digest(resumed), reference, note)
        let reported = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any])
        let python = try evaluateWithPython(path)
        XCTAssertEqual(python["params_sha256_ok"] as? Bool, true)
        XCTAssertEqual(python["layers"] as? [Int], [784, 128, 64, 32, 10])
        // numpy evaluates in float64: at most 2 near-ties of 10,000 may flip.
        XCTAssertEqual(python["test_accuracy"] as! Double, reported["test_accuracy"] as! Double, accuracy: 0.0002)
    }

    /// Issue 22's promise through the CLI: an Adam run with a cosine schedule, given in epochs,
    /// stopped by SIGINT in the middle of an epoch and resumed at another worker count ends with
    /// the uninterrupted run's bits; `--eval-every epoch` evaluates after each epoch's last iteration.
    func testEpochRunInterruptedMidEpochResumesExactly() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("adam.safetensors").path, csv = dir.appendingPathComponent("m.csv").path
        let common = ["--hidden", "256,128", "--activation", "relu", "--init", "he", "--optimizer", "adam", "--learning-rate", "0.001",
                      "--schedule", "cosine", "--warmup", "50", "--epochs", "3", "--batch-size", "200", "--json"]
        let uninterrupted = try runPTrain(common + ["--workers", "2", "--metrics", csv, "--eval-every", "epoch"])
        let reference = try digest(uninterrupted)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(uninterrupted.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["iterations"] as? Int, 900, "3 epochs of 60,000 images in batches of 200")
        XCTAssertEqual(report["sampling"] as? String, "epoch", "--epochs implies epoch sampling")
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst()
        let evaluated = rows.filter { !$0.hasSuffix(",") }.map { $0.split(separator: ",")[0] }
        XCTAssertEqual(evaluated, ["300", "600", "900"], "one evaluation after each epoch")
        let (saved, note) = try interruptAtRandom(common + ["--workers", "1", "--checkpoint", path, "--checkpoint-every", "70"], checkpoint: path, maxDelay: 300)
        XCTAssertEqual(saved.configuration.optimizer.kind, .adam)
        XCTAssertEqual(saved.optimizerState.slots, 2)
        let resumed = try digest(try runPTrain(common + ["--workers", "3", "--placement", "compact", "--resume", path]))
        XCTAssertEqual(resumed, reference, note + ", epoch \(Double(saved.iteration) / 300)")
        let refused = try runPTrain(["--hidden", "256,128", "--activation", "relu", "--init", "he", "--optimizer", "adamw", "--learning-rate", "0.001",
                                     "--schedule", "cosine", "--warmup", "50", "--epochs", "3", "--batch-size", "200", "--resume", path])
        XCTAssertEqual(refused.status, 1)
        XCTAssert(refused.stderr.contains("--optimizer adam in the checkpoint, adamw now"), refused.stderr)
    }

    /// A restart script can always rerun the same command: resuming a checkpoint that holds every
    /// requested iteration trains nothing, exits 0 and reports the run (JSON too), leaving the
    /// metrics file alone. Every other resume that could not continue the same run is refused
    /// through the CLI with one line naming the difference; other kernels resume with a warning.
    func testResumeIsIdempotentAndRefusalsNameTheDifference() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("run.safetensors").path, csv = dir.appendingPathComponent("m.csv").path
        let common = ["--iterations", "300", "--hidden", "32", "--batch-size", "50"]
        let first = try runPTrain(common + ["--json", "--checkpoint", path, "--metrics", csv])
        let firstReport = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any], first.stderr)
        let metrics = try String(contentsOfFile: csv, encoding: .utf8)
        let again = try runPTrain(common + ["--json", "--resume", path, "--checkpoint", path, "--metrics", csv, "--workers", "2"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stderr, "")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        for key in ["params_sha256", "iterations", "test_accuracy", "final_loss", "epochs"] {
            XCTAssertEqual(report[key] as? NSObject, firstReport[key] as? NSObject, key)
        }
        XCTAssertEqual(report["losses_first_last"] as? [Double], [firstReport["final_loss"] as! Double, firstReport["final_loss"] as! Double])
        XCTAssertEqual(try String(contentsOfFile: csv, encoding: .utf8), metrics, "a run that trains nothing leaves the metrics alone")
        XCTAssertEqual(try TrainingCheckpoint.read(path).iteration, 300)
        let summary = try runPTrain(common + ["--resume", path])
        XCTAssertEqual(summary.status, 0, summary.stderr)
        XCTAssert(summary.stderr.contains("already holds all 300 iterations; nothing to train"), summary.stderr)
        XCTAssert(summary.stdout.contains("params sha256 \(firstReport["params_sha256"] as! String)"), summary.stdout)

        // A dataset of other images (the same shape): its SHA-256 differs.
        let data = dir.appendingPathComponent("data").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var random = TestRandom(seed: 5)
        for (stem, count) in [("train", 1000), ("t10k", 100)] {
            try Data(idxBytes(dimensions: [count, 28, 28], elements: (0..<count * 784).map { _ in UInt8(random.int(below: 256)) }))
                .write(to: URL(fileURLWithPath: "\(data)/\(stem)-images-idx3-ubyte"))
            try Data(idxBytes(dimensions: [count], elements: (0..<count).map { _ in UInt8(random.int(below: 10)) }))
                .write(to: URL(fileURLWithPath: "\(data)/\(stem)-labels-idx1-ubyte"))
        }
        let refusals: [(change: [String], phrase: String)] = [
            (["--data", data], "dataset (sha256"),
            (["--seed", "2"], "--seed 1 in the checkpoint, 2 now"),
            (["--batch-size", "60"], "--batch-size 50 in the checkpoint, 60 now"),
            (["--hidden", "33"], "--hidden 32 in the checkpoint, 33 now"),
            (["--learning-rate", "0.05"], "--learning-rate 0.1 in the checkpoint, 0.05 now"),
            (["--sampling", "epoch"], "--sampling replacement in the checkpoint, epoch now"),
            (["--optimizer", "momentum"], "--optimizer sgd in the checkpoint, momentum now"),
            (["--iterations", "200"], "already holds 300 iterations, more than the 200 asked for"),
        ]
        for (change, phrase) in refusals {
            var arguments = common + ["--resume", path]
            for (i, flag) in change.enumerated() where i % 2 == 0 {
                if let at = arguments.firstIndex(of: flag) { arguments.removeSubrange(at...at + 1) }
                arguments += [flag, change[i + 1]]
            }
            let r = try runPTrain(arguments)
            XCTAssertEqual(r.status, 1, "\(change): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(change): \(r.stderr)")
            XCTAssert(r.stderr.contains(phrase), "\(change): \(r.stderr)")
        }
        // Other kernels: allowed, with a warning that the bits will differ from an uninterrupted run.
        let saved = try TrainingCheckpoint.read(path)
        let other = saved.kernels == "baseline" ? "avx2" : "baseline"
        var relabelled = saved
        relabelled.kernels = other
        try relabelled.write(to: path)
        let continued = try runPTrain(["--iterations", "310", "--hidden", "32", "--batch-size", "50", "--resume", path])
        XCTAssertEqual(continued.status, 0, continued.stderr)
        XCTAssert(continued.stderr.contains("was written with the \(other) kernels"), continued.stderr)
    }

    /// A resumed run continues the `--metrics` file of the run it resumes (dropping rows the
    /// stopped run trained past its checkpoint, which it recomputes), so stopping and resuming ends
    /// with the uninterrupted run's file, byte for byte; a file that does not hold the earlier
    /// iterations is replaced by this run's rows, with a note.
    func testResumedRunContinuesItsMetrics() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let common = ["--hidden", "32", "--eval-every", "100"]
        XCTAssertEqual(try runPTrain(common + ["--iterations", "500", "--metrics", path("whole.csv")]).status, 0)
        // The stopped run: a checkpoint after 200 iterations, metrics through 250.
        XCTAssertEqual(try runPTrain(common + ["--iterations", "200", "--checkpoint", path("c.safetensors")]).status, 0)
        XCTAssertEqual(try runPTrain(common + ["--iterations", "250", "--metrics", path("m.csv")]).status, 0)
        let resumed = try runPTrain(common + ["--iterations", "500", "--resume", path("c.safetensors"), "--metrics", path("m.csv"),
                                              "--plot", path("loss.svg"), "--workers", "2"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let whole = try String(contentsOfFile: path("whole.csv"), encoding: .utf8)
        XCTAssertEqual(whole.split(separator: "\n").count, 501)
        XCTAssertEqual(try String(contentsOfFile: path("m.csv"), encoding: .utf8), whole)
        // Not a metrics file of this run: replaced, with a note.
        try "something else\n".write(toFile: path("other.csv"), atomically: true, encoding: .utf8)
        let replaced = try runPTrain(common + ["--iterations", "300", "--resume", path("c.safetensors"), "--metrics", path("other.csv")])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        XCTAssert(replaced.stderr.contains("does not hold iterations 1-200 of the resumed run"), replaced.stderr)
        let rows = try String(contentsOfFile: path("other.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.count, 101)
        XCTAssert(rows[1].hasPrefix("201,"), "\(rows[1])")
    }

    /// Sends SIGTERM to a run whose stopping is slow, waits until ptrain says it is stopping, then
    /// sends SIGTERM again: right away (ptrain is still finishing the iteration), or once the stop's
    /// checkpoint write has begun (`duringLastWrite`). Returns the process and what it printed, or
    /// nil when the last write ended before this test saw its temporary file (then try again).
    ///
    /// A wide net and a large dense batch make stopping slow: an iteration of about 13 GFLOP, then a
    /// 13 MB checkpoint with fsync. The second signal waits for ptrain's message, as a user at a
    /// terminal does: two signals sent a few milliseconds apart can both be pending before ptrain's
    /// signal thread runs, and the kernel then delivers them as one (standard signals are not queued).
    func stopTwice(checkpoint path: String, duringLastWrite: Bool) throws -> (process: Process, said: String)? {
        let stderr = Pipe()
        // Checkpoints every 2 iterations: the first signal follows the write of iteration 2, so the
        // next write to start is the stop's own (of iteration 2 or 3).
        let process = try startAndAwaitCheckpoint(
            ["--iterations", "1000000", "--hidden", "4096", "--batch-size", "1000", "--input", "dense",
             "--checkpoint", path, "--checkpoint-every", "2"],
            checkpoint: path, stderr: stderr)
        kill(process.processIdentifier, SIGTERM)
        var said = ""
        while !said.contains("send the signal again") {
            let chunk = stderr.fileHandleForReading.availableData
            if chunk.isEmpty { break }  // end of file: ptrain exited without the message
            said += String(decoding: chunk, as: UTF8.self)
        }
        XCTAssert(said.contains("stopping after this iteration (send the signal again to exit at once)"), said)
        if duringLastWrite {
            let folder = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
            let temporary = "\(folder)/.\(name).tmp-\(process.processIdentifier)"
            while access(temporary, F_OK) != 0 && process.isRunning { usleep(50) }
            guard process.isRunning else {
                process.waitUntilExit()
                return nil
            }
        }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        said += String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process, said)
    }

    func testSecondSignalExitsAtOnce() throws {
        // The test's window is the stop's 13 MB checkpoint write; under ThreadSanitizer the thread
        // that handles the second signal can be scheduled only after that write has finished, and
        // the run then rightly ends as stopped (the other signal tests run there).
        if sanitizer == "thread" { throw XCTSkip("under ThreadSanitizer the second signal can miss the last write's window") }
        for duringLastWrite in [false, true] {
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("c.safetensors").path
            var stopped: (process: Process, said: String)?
            for _ in 0..<3 where stopped == nil {
                stopped = try stopTwice(checkpoint: path, duringLastWrite: duringLastWrite)
            }
            let (process, said) = try XCTUnwrap(stopped, "3 runs ended their last write before the test saw it")
            XCTAssertEqual(process.terminationReason, .exit)
            XCTAssertEqual(process.terminationStatus, 128 + SIGTERM, "second signal during the last write: \(duringLastWrite); \(said)")
            XCTAssertFalse(said.contains("interrupted after"), said)
            XCTAssertNoThrow(try TrainingCheckpoint.read(path), "the checkpoint on disk is still whole")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["c.safetensors"],
                           "no temporary file left behind")
        }
    }

    /// kill -9 at random moments while a checkpoint is rewritten every iteration: the file at PATH is
    /// always a whole, valid checkpoint (the previous one or the new one).
    func testKillDuringCheckpointWritingNeverLeavesABrokenFile() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.safetensors").path
        var random = TestRandom(seed: 77)
        for round in 0..<8 {
            // A checkpoint is rewritten every iteration (about a millisecond each with its fsync), so a
            // kill 0-20 ms after this run's first write lands at a random point of some write.
            let delay = Double(random.int(below: 20)) / 1000
            let process = try runAndSignal(["--iterations", "1000000", "--checkpoint", path, "--checkpoint-every", "1"],
                                           checkpoint: path, signal: SIGKILL, after: delay)
            XCTAssertEqual(process.terminationReason, .uncaughtSignal)
            XCTAssertNoThrow(try TrainingCheckpoint.read(path), "round \(round), killed \(delay) s after a write")
        }
    }

    func testDivergenceStopsWithAMessage() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.safetensors").path
        let r = try runPTrain(["--iterations", "50", "--learning-rate", "1e38", "--checkpoint", path, "--checkpoint-every", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssert(r.stderr.contains("the loss of iteration") || r.stderr.contains("not finite"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        // Never overwritten by a diverged state: readable and finite (or never written at all).
        if FileManager.default.fileExists(atPath: path) {
            XCTAssert(try TrainingCheckpoint.read(path).net.parameterArray.allSatisfy(\.isFinite))
        }
    }

    func testMetricsPlotAndEval() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = dir.appendingPathComponent("m.csv").path, svg = dir.appendingPathComponent("loss.svg").path
        let ckpt = dir.appendingPathComponent("c.safetensors").path
        let r = try runPTrain(["--iterations", "300", "--metrics", csv, "--eval-every", "100", "--plot", svg, "--checkpoint", ckpt, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let reported = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.first, "iteration,epoch,loss,test_accuracy")
        XCTAssertEqual(rows.count, 301)
        XCTAssertEqual(rows.filter { !$0.hasSuffix(",") }.count, 4, "header + 3 evaluations")
        XCTAssertEqual(rows[300].split(separator: ",")[1], "0.5000", "300 batches of 100 of 60,000 images")
        XCTAssertEqual(Double(rows[300].split(separator: ",")[3]), reported["test_accuracy"] as? Double)
        let svgText = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssert(svgText.hasPrefix("<svg") && svgText.contains("polyline") && svgText.contains("iteration"))
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/rsvg-convert") {
            let render = Process()
            render.executableURL = URL(fileURLWithPath: "/usr/bin/rsvg-convert")
            render.arguments = [svg, "-o", dir.appendingPathComponent("loss.png").path]
            try render.run()
            render.waitUntilExit()
            XCTAssertEqual(render.terminationStatus, 0, "the SVG renders")
        }
        let e = try runPTrain(["eval", "--checkpoint", ckpt, "--json"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let evaluated = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(evaluated["test_accuracy"] as? Double, reported["test_accuracy"] as? Double)
        XCTAssertEqual(evaluated["params_sha256"] as? String, reported["params_sha256"] as? String)
        // Python's safetensors + numpy read the same model.
        let result = try evaluateWithPython(ckpt)
        XCTAssertEqual(result["params_sha256_ok"] as? Bool, true)
        // numpy evaluates in float64: at most 2 near-ties of 10,000 may flip.
        XCTAssertEqual(result["test_accuracy"] as! Double, reported["test_accuracy"] as! Double, accuracy: 0.0002)
    }

    func testVerifyCommand() throws {
        let r = try runPTrain(["verify", "--iterations", "120", "--workers", "1,3,8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssert(r.stdout.contains("all 5 runs end with identical parameters"), r.stdout)
        XCTAssert(r.stdout.contains("--input dense"), "MNIST runs sparse under auto; verify also runs it dense: \(r.stdout)")
        let bad = try runPTrain(["verify", "--workers", "1,x"])
        XCTAssertEqual(bad.status, 64)
    }
}
