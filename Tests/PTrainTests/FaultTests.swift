import Checkpoint
import Foundation
import TestSupport
import XCTest

/// Faults in the file system, through the CLI: a disk that fills while ptrain writes, paths that
/// name folders, FIFOs or read-only places. Each is one line on stderr and exit status 1 (never a
/// crash or a hang), and a checkpoint already on disk stays whole.
final class FaultTests: XCTestCase {
    func assertOneLine(_ r: CommandResult, _ phrases: [String], _ what: String, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)", line: line)
        XCTAssertFalse(r.signaled, what, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(what): \(r.stderr)", line: line)
        for phrase in phrases { XCTAssert(r.stderr.contains(phrase), "\(what): \(r.stderr) lacks \"\(phrase)\"", line: line) }
    }

    /// A full disk, made by a file-size limit (`prlimit --fsize`): writes fail with EFBIG, as they
    /// fail with ENOSPC on a full disk, through the same code. ptrain ignores SIGXFSZ itself.
    func testFullDiskWhileWritingKeepsThePreviousCheckpoint() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else { throw XCTSkip("prlimit (util-linux) is not installed") }
        // ThreadSanitizer's runtime dies at start-up (SIGBUS) under a file-size limit of a few KB;
        // the release run covers this test.
        if sanitizer == "thread" { throw XCTSkip("a file-size limit stops ThreadSanitizer's runtime itself") }
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.safetensors").path
        let small = ["--hidden", "8"]  // a 26.6 KB checkpoint
        XCTAssertEqual(try runPTrain(small + ["--iterations", "50", "--checkpoint", path]).status, 0)
        let full = try runPTrain(small + ["--iterations", "60", "--checkpoint", path], prefix: ["prlimit", "--fsize=4096"])
        assertOneLine(full, ["--checkpoint \(path): writing failed (File too large)", "raise the limit, or write elsewhere"], "checkpoint")
        XCTAssertEqual(try TrainingCheckpoint.read(path).iteration, 50, "the previous checkpoint is intact")
        for flag in ["--metrics", "--plot", "--trace"] {
            let out = dir.appendingPathComponent("out").path
            let r = try runPTrain(small + ["--iterations", "300", flag, out], prefix: ["prlimit", "--fsize=2048"])
            assertOneLine(r, ["\(flag) \(out): writing failed (File too large)"], flag)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), flag)
        }
        // The checkpoint is written before the metrics: a full disk at the metrics keeps it.
        let metrics = dir.appendingPathComponent("m.csv").path
        let late = try runPTrain(small + ["--iterations", "2000", "--checkpoint", path, "--metrics", metrics],
                                 prefix: ["prlimit", "--fsize=30000"])
        assertOneLine(late, ["--metrics"], "metrics after the checkpoint")
        XCTAssertEqual(try TrainingCheckpoint.read(path).iteration, 2000)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["c.safetensors"], "no temporary file left")
    }

    func testPathsThatAreNotFilesAreRefusedWithoutWaiting() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("folder").path, fifo = dir.appendingPathComponent("fifo").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        // `timeout` turns a hang (open(2) of a FIFO waits for a writer) into status 124.
        func run(_ arguments: [String]) throws -> CommandResult { try runPTrain(arguments, prefix: ["timeout", "60"]) }
        assertOneLine(try run(["--iterations", "3", "--checkpoint", folder]), ["--checkpoint \(folder): is a folder"], "checkpoint folder")
        assertOneLine(try run(["--iterations", "3", "--metrics", fifo]), ["--metrics \(fifo): is a FIFO (named pipe)"], "metrics FIFO")
        assertOneLine(try run(["--iterations", "3", "--resume", folder]), ["\(folder): is a folder, not a regular file"], "resume folder")
        assertOneLine(try run(["--iterations", "3", "--resume", fifo]), ["\(fifo): is a FIFO (named pipe), not a regular file"], "resume FIFO")
        assertOneLine(try run(["eval", "--checkpoint", fifo]), ["is a FIFO"], "eval FIFO")
        // A --data folder whose training images are a FIFO, then a folder of that name.
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        for stem in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try FileManager.default.copyItem(at: embeddedMNISTFolder.appendingPathComponent(stem + ".gz"), to: data.appendingPathComponent(stem + ".gz"))
        }
        let images = data.appendingPathComponent("train-images-idx3-ubyte").path
        XCTAssertEqual(mkfifo(images, 0o644), 0)
        assertOneLine(try run(["--iterations", "3", "--data", data.path]), ["\(images): is a FIFO (named pipe), not a regular file"], "IDX FIFO")
        try FileManager.default.removeItem(atPath: images)
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        assertOneLine(try run(["--iterations", "3", "--data", data.path]), ["\(images): is a folder, not a regular file"], "IDX folder")
    }

    /// A read-only folder and an unreadable checkpoint, for a user that is not root (root may write
    /// anywhere): as root the test runs ptrain as `nobody` through setpriv, from a copy of the
    /// executable that `nobody` may run (the errors come before ptrain reads its embedded data).
    func testReadOnlyPlacesForAnOrdinaryUser() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var prefix: [String] = []
        var executable = ptrainExecutable.path
        if getuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("setpriv (util-linux) is not installed") }
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            executable = dir.appendingPathComponent("ptrain").path
            try FileManager.default.copyItem(atPath: ptrainExecutable.path, toPath: executable)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        }
        let readOnly = dir.appendingPathComponent("read-only").path
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: readOnly)
        let secret = dir.appendingPathComponent("secret.safetensors").path
        XCTAssert(FileManager.default.createFile(atPath: secret, contents: Data([1, 2, 3]), attributes: [.posixPermissions: 0o000]))
        func run(_ arguments: [String]) throws -> CommandResult {
            try runPTrain(arguments, prefix: prefix, executable: URL(fileURLWithPath: executable))
        }
        for flag in ["--checkpoint", "--metrics", "--plot"] {
            assertOneLine(try run(["--iterations", "3", flag, readOnly + "/out"]), ["\(flag) \(readOnly)/out: the folder \(readOnly) is not writable"], flag)
        }
        assertOneLine(try run(["eval", "--checkpoint", secret]), ["\(secret): cannot open (Permission denied)"], "unreadable checkpoint")
    }
}
