import Checkpoint
import Foundation
import Model
import TestSupport
import Training
import XCTest

final class CheckpointTests: XCTestCase {
    func sample() -> TrainingCheckpoint {
        let net = Network(spec: NetworkSpec(input: 6, hidden: [3], output: 10), seed: 9)
        // Values a float format gets wrong first: signed zero, NaN payloads, infinities, subnormals.
        let special: [Float] = [-0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for (i, v) in special.enumerated() { net.parameters.pointer[i] = v }
        var c = TrainingConfiguration()
        c.hidden = [3]
        c.iterations = 500
        return TrainingCheckpoint(net: net, iteration: 123, configuration: c, datasetSHA256: String(repeating: "ab", count: 32), kernels: "avx2",
                                  loss: 0.3141)
    }

    func testRoundTripIsBitExact() throws {
        let original = sample()
        let decoded = try TrainingCheckpoint.decode(original.encoded(), path: "mem")
        XCTAssertEqual(decoded.net.parameterArray.map(\.bitPattern), original.net.parameterArray.map(\.bitPattern))
        XCTAssertEqual(decoded.iteration, 123)
        XCTAssertEqual(decoded.configuration, original.configuration)
        XCTAssertEqual(decoded.datasetSHA256, original.datasetSHA256)
        XCTAssertEqual(decoded.loss?.bitPattern, Float(0.3141).bitPattern)
        var unrecorded = original
        unrecorded.loss = nil
        XCTAssertNil(try TrainingCheckpoint.decode(unrecorded.encoded(), path: "mem").loss, "the loss is optional")
        let bytes = original.encoded()
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + headerLength) % 8, 0, "data is 8-byte aligned")
    }

    func assertRejected(_ bytes: [UInt8], _ phrase: String, line: UInt = #line) {
        XCTAssertThrowsError(try TrainingCheckpoint.decode(bytes, path: "x.safetensors"), line: line) { error in
            XCTAssert("\(error)".contains(phrase), "\"\(error)\" lacks \"\(phrase)\"", line: line)
            XCTAssert("\(error)".hasPrefix("x.safetensors: "), line: line)
        }
    }

    /// `checkpoint`'s file with its metadata edited: a value sets a key, nil removes it.
    func edited(_ checkpoint: TrainingCheckpoint, _ changes: [String: String?]) -> [UInt8] {
        let (tensors, metadata) = try! SafeTensors.decode(checkpoint.encoded(), path: "edited")
        var m = metadata
        for (k, v) in changes { m[k] = v }
        return SafeTensors.encode(tensors: tensors, metadata: m)
    }

    func withHeader(_ json: String, data: [UInt8] = []) -> [UInt8] {
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { out += $0 }
        return out + Array(json.utf8) + data
    }

    func testHostileFilesAreRefused() {
        let good = sample().encoded()
        assertRejected([1, 2, 3], "truncated")
        assertRejected(Array(good.prefix(good.count - 5)), "do not fit")
        assertRejected([255, 255, 255, 255, 255, 255, 255, 127] + good.dropFirst(8), "exceeds the 1 MiB limit")
        assertRejected(withHeader("{\"a\":1"), "not a JSON object")
        assertRejected(withHeader(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)), "nested too deeply")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", data: [0, 0]), "dtype F16")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F32\",\"shape\":[100000,100000],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]), "larger than the file")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data: [0, 0, 0, 0]), "do not fit")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]), "not a ptrain checkpoint")
        var corrupt = good
        corrupt[corrupt.count - 3] ^= 0x40
        assertRejected(corrupt, "do not match their recorded SHA-256")
        // The rest of the container's checks, each one line.
        assertRejected(withHeader("{\"__metadata__\":{\"a\":1}}"), "__metadata__ must map strings to strings")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F32\",\"shape\":[1]}}", data: [0, 0, 0, 0]), "tensor \"W1\" lacks dtype, shape or data_offsets")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]), "malformed shape or data_offsets")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"W2\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                                  data: [0, 0, 0, 0, 0, 0, 0, 0]), "overlaps or leaves gaps")
        assertRejected(withHeader("{\"W1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0, 9, 9, 9, 9]), "4 bytes after the last tensor")
    }

    /// Every metadata check of a ptrain checkpoint, each on a file whose tensors are whole: one line
    /// naming the key.
    func testEveryMetadataErrorIsOneLine() {
        var c = TrainingConfiguration()
        c.hidden = [3]
        c.optimizer.kind = .momentum
        let net = Network(spec: c.spec(input: 6, classes: 10), seed: 2)
        let original = TrainingCheckpoint(net: net, iteration: 5, configuration: c, datasetSHA256: "x", kernels: "avx2")
        func with(_ changes: [String: String?]) -> [UInt8] { edited(original, changes) }
        XCTAssertNoThrow(try TrainingCheckpoint.decode(with([:]), path: "x"))
        for key in ["iteration", "iterations", "batch_size", "workers", "warmup", "decay_every"] {
            assertRejected(with([key: "-1"]), "metadata \"\(key)\" is not a count")
        }
        for key in ["iteration", "dataset_sha256", "kernels", "learning_rate_bits"] {
            assertRejected(with([key: nil]), "metadata lacks \"\(key)\"")
        }
        assertRejected(with(["learning_rate_bits": "xyz"]), "learning_rate_bits, seed or sampling is malformed")
        assertRejected(with(["seed": "-3"]), "learning_rate_bits, seed or sampling is malformed")
        assertRejected(with(["sampling": "shuffle"]), "learning_rate_bits, seed or sampling is malformed")
        assertRejected(with(["optimizer": "lion"]), "metadata optimizer \"lion\" is unknown")
        assertRejected(with(["schedule": "linear"]), "metadata schedule \"linear\" is unknown")
        assertRejected(with(["beta2_bits": nil]), "metadata \"beta2_bits\" is missing or not 8 hex digits")
        assertRejected(with(["momentum_bits": "zz"]), "metadata \"momentum_bits\" is missing or not 8 hex digits")
        assertRejected(with(["init": "xavier"]), "or init \"xavier\" is unknown")
        assertRejected(with(["format": "other"]), "not a ptrain checkpoint (metadata format is other)")
        assertRejected(with(["format_version": "two"]), "has format version two")
        // The optimizer decides the state tensors: sgd expects none, adam two slots.
        assertRejected(with(["optimizer": "sgd"]), "expected W1, b1, W2, b2")
        assertRejected(with(["optimizer": "adam"]), "expected W1, b1, W2, b2, m.W1")
        assertRejected(with(["params_sha256": String(repeating: "0", count: 64)]), "do not match their recorded SHA-256")
    }

    /// A version-1 file (the lecture's net: metadata input, hidden, classes) still loads, as
    /// 784-H-10 sigmoid with the lecture's init.
    func testVersionOneStillLoads() throws {
        let original = sample()
        var metadata = original.metadata
        for key in ["layers", "activation", "init"] { metadata[key] = nil }
        metadata["format_version"] = "1"
        (metadata["input"], metadata["hidden"], metadata["classes"]) = ("6", "3", "10")
        let p = original.net.parameterArray
        let tensors = original.net.layout.tensors.map { Tensor(name: $0.name, shape: $0.shape, values: Array(p[$0.range])) }
        let decoded = try TrainingCheckpoint.decode(SafeTensors.encode(tensors: tensors, metadata: metadata), path: "v1")
        XCTAssertEqual(decoded.net.spec, NetworkSpec(input: 6, hidden: [3], output: 10))
        XCTAssertEqual(decoded.net.parameterArray.map(\.bitPattern), p.map(\.bitPattern))
        XCTAssertEqual(decoded.configuration, original.configuration)
    }

    /// Metadata that declares a network its tensors do not hold, or one beyond the limits, is
    /// refused with one line before anything of that size is allocated.
    func testHostileNetworkMetadataIsRefusedBeforeAllocating() {
        let original = sample()
        func with(_ changes: [String: String?]) -> [UInt8] { edited(original, changes) }
        assertRejected(with(["layers": "16777216,8192,64"]), "tensor W1 is missing or not of shape [16777216, 8192]")
        assertRejected(with(["layers": "6,3,10,10"]), "expected W1, b1, W2, b2, W3, b3")
        assertRejected(with(["layers": "6,0,10"]), "network sizes 6-0-10 are out of range")
        assertRejected(with(["layers": "6,3,100000"]), "out of range")
        assertRejected(with(["layers": "6,,10"]), "not a list of at least 3 widths")
        assertRejected(with(["layers": "6,10"]), "not a list of at least 3 widths")
        assertRejected(with(["layers": nil]), "metadata lacks \"layers\"")
        assertRejected(with(["activation": "swish"]), "activation \"swish\" or init")
        assertRejected(with(["format_version": "3"]), "this ptrain reads versions 1-2")
        assertRejected(with(["format_version": "1"]), "metadata lacks \"input\"")
        assertRejected(with(["loss": "low"]), "metadata \"loss\" is not a number")
    }

    func testResumeRefusesAnotherRun() throws {
        let saved = sample()
        var c = saved.configuration
        XCTAssertNoThrow(try saved.checkResumable(as: c, datasetSHA256: saved.datasetSHA256, input: 6, path: "p"))
        c.workers = 7
        c.placement = .compact
        XCTAssertNoThrow(try saved.checkResumable(as: c, datasetSHA256: saved.datasetSHA256, input: 6, path: "p"), "workers and placement may change")
        XCTAssertThrowsError(try saved.checkResumable(as: c, datasetSHA256: "00", input: 6, path: "p")) { XCTAssert("\($0)".contains("dataset")) }
        var other = c
        other.seed = 2
        XCTAssertThrowsError(try saved.checkResumable(as: other, datasetSHA256: saved.datasetSHA256, input: 6, path: "p")) { XCTAssert("\($0)".contains("--seed 1 in the checkpoint, 2 now")) }
        other = c
        other.learningRate = 0.2
        XCTAssertThrowsError(try saved.checkResumable(as: other, datasetSHA256: saved.datasetSHA256, input: 6, path: "p")) { XCTAssert("\($0)".contains("--learning-rate")) }
        other = c
        other.hidden = [3, 2]
        XCTAssertThrowsError(try saved.checkResumable(as: other, datasetSHA256: saved.datasetSHA256, input: 6, path: "p")) { XCTAssert("\($0)".contains("--hidden 3 in the checkpoint, 3,2 now")) }
        other = c
        other.activation = .relu
        XCTAssertThrowsError(try saved.checkResumable(as: other, datasetSHA256: saved.datasetSHA256, input: 6, path: "p")) { XCTAssert("\($0)".contains("--activation sigmoid in the checkpoint, relu now")) }
        other = c
        other.initialization = .he
        XCTAssertThrowsError(try saved.checkResumable(as: other, datasetSHA256: saved.datasetSHA256, input: 6, path: "p")) { XCTAssert("\($0)".contains("--init lecture in the checkpoint, he now")) }
        XCTAssertThrowsError(try saved.checkResumable(as: c, datasetSHA256: saved.datasetSHA256, input: 7, path: "p")) { XCTAssert("\($0)".contains("input width 6 in the checkpoint, 7 now")) }
        other = c
        other.iterations = 123
        XCTAssertNoThrow(try saved.checkResumable(as: other, datasetSHA256: saved.datasetSHA256, input: 6, path: "p"), "a complete run: nothing to train")
        other.iterations = 100
        XCTAssertThrowsError(try saved.checkResumable(as: other, datasetSHA256: saved.datasetSHA256, input: 6, path: "p")) {
            XCTAssert("\($0)".contains("already holds 123 iterations, more than the 100 asked for"), "\($0)")
        }
    }

    func testAtomicWriteReplacesWholeFiles() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.safetensors").path
        try sample().write(to: path)
        try sample().write(to: path)
        XCTAssertEqual(try TrainingCheckpoint.read(path).iteration, 123)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["c.safetensors"], "no temporary file left behind")
        XCTAssertThrowsError(try sample().write(to: dir.path + "/missing/c.safetensors")) { XCTAssert("\($0)".contains("creating")) }
    }
}
