import Dataset
import Foundation
import TestSupport
import XCTest

final class DatasetTests: XCTestCase {
    func testEmbeddedMNISTLoadsAndVerifies() throws {
        let mnist = try MNIST.loadEmbedded()
        XCTAssertEqual(mnist.train.count, 60_000)
        XCTAssertEqual(mnist.test.count, 10_000)
        XCTAssertEqual(mnist.train.pixelsPerImage, 784)
        XCTAssertEqual(mnist.train.labels.prefix(5), [5, 0, 4, 1, 9])  // the well-known first labels
        XCTAssertEqual(mnist.test.labels.prefix(3), [7, 2, 1])
    }

    /// A folder with the four files copied from the embedded set, where `tamper` may replace one.
    func folder(tamper: (URL) throws -> Void = { _ in }, name: String = #function) throws -> URL {
        let dir = temporaryDirectory(name)
        for stem in MNIST.fileStems {
            try FileManager.default.copyItem(at: embeddedMNISTFolder.appendingPathComponent(stem + ".gz"),
                                             to: dir.appendingPathComponent(stem + ".gz"))
        }
        try tamper(dir)
        return dir
    }

    func replace(_ dir: URL, _ stem: String, with bytes: [UInt8]) throws {
        try FileManager.default.removeItem(at: dir.appendingPathComponent(stem + ".gz"))
        try Data(bytes).write(to: dir.appendingPathComponent(stem))
    }

    /// Loading must fail with a DatasetError naming `file` and containing `phrase`.
    func assertRejected(_ dir: URL, file: String, phrase: String, line: UInt = #line) {
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try MNIST.load(directory: dir.path), line: line) { error in
            guard let e = error as? DatasetError else { return XCTFail("not a DatasetError: \(error)", line: line) }
            XCTAssert(e.path.hasSuffix(file), "error names \(e.path), expected \(file)", line: line)
            XCTAssert(e.description.contains(phrase), "\"\(e.description)\" lacks \"\(phrase)\"", line: line)
            XCTAssertFalse(e.description.contains("\n"), "error must be one line", line: line)
        }
    }

    func testPlainUncompressedFolderLoads() throws {
        let dir = try folder(tamper: { dir in
            try self.replace(dir, "t10k-labels-idx1-ubyte", with: idxBytes(dimensions: [10_000], elements: [UInt8](repeating: 3, count: 10_000)))
        })
        defer { try? FileManager.default.removeItem(at: dir) }
        let mnist = try MNIST.load(directory: dir.path)
        XCTAssertEqual(mnist.test.labels.first, 3)
    }

    func testMissingFile() throws {
        assertRejected(try folder(tamper: { try FileManager.default.removeItem(at: $0.appendingPathComponent("train-labels-idx1-ubyte.gz")) }),
                       file: "train-labels-idx1-ubyte", phrase: "missing")
    }

    func testWrongMagic() throws {
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-labels-idx1-ubyte", with: idxBytes(dimensions: [3], elements: [1, 2, 3], magic: (0x50, 0x4b))) }),
                       file: "t10k-labels-idx1-ubyte", phrase: "wrong magic")
    }

    func testWrongElementType() throws {
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-labels-idx1-ubyte", with: idxBytes(dimensions: [1], elements: [0, 0, 0, 0], type: 0x0D)) }),
                       file: "t10k-labels-idx1-ubyte", phrase: "element type 0xd")
    }

    func testWrongRank() throws {
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-images-idx3-ubyte", with: idxBytes(dimensions: [2, 2], elements: [1, 2, 3, 4])) }),
                       file: "t10k-images-idx3-ubyte", phrase: "rank 2, expected 3")
    }

    func testTruncatedFile() throws {
        let full = idxBytes(dimensions: [10_000, 28, 28], elements: [UInt8](repeating: 0, count: 10_000 * 784))
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-images-idx3-ubyte", with: Array(full.prefix(5000))) }),
                       file: "t10k-images-idx3-ubyte", phrase: "truncated")
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-images-idx3-ubyte", with: [0, 0]) }),
                       file: "t10k-images-idx3-ubyte", phrase: "truncated")
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-images-idx3-ubyte", with: [0, 0, 8, 3, 0, 0]) }),
                       file: "t10k-images-idx3-ubyte", phrase: "truncated inside its header")
    }

    func testTrailingBytes() throws {
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-labels-idx1-ubyte", with: idxBytes(dimensions: [2], elements: [1, 2, 3])) }),
                       file: "t10k-labels-idx1-ubyte", phrase: "trailing bytes")
    }

    /// A header claiming 2^32-1 x 2^32-1 x 255 images must be refused from the header alone.
    func testAbsurdHeaderRefusedBeforeAllocating() throws {
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-images-idx3-ubyte", with: [0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 255]) }),
                       file: "t10k-images-idx3-ubyte", phrase: "header claims")
    }

    func testLabelOutOfRange() throws {
        var labels = [UInt8](repeating: 1, count: 10_000)
        labels[1234] = 200
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-labels-idx1-ubyte", with: idxBytes(dimensions: [10_000], elements: labels)) }),
                       file: "t10k-labels-idx1-ubyte", phrase: "label 200 at index 1234")
    }

    func testMismatchedCounts() throws {
        assertRejected(try folder(tamper: { try self.replace($0, "t10k-labels-idx1-ubyte", with: idxBytes(dimensions: [9_999], elements: [UInt8](repeating: 1, count: 9_999))) }),
                       file: "t10k-labels-idx1-ubyte", phrase: "9999 labels but")
    }

    func testCorruptGzip() throws {
        assertRejected(try folder(tamper: { dir in
            let url = dir.appendingPathComponent("train-labels-idx1-ubyte.gz")
            var bytes = [UInt8](try Data(contentsOf: url))
            for i in 100..<200 { bytes[i] ^= 0x5A }
            try Data(bytes).write(to: url)
        }), file: "train-labels-idx1-ubyte.gz", phrase: "corrupt gzip")
    }

    func testTruncatedGzip() throws {
        assertRejected(try folder(tamper: { dir in
            let url = dir.appendingPathComponent("train-labels-idx1-ubyte.gz")
            let bytes = try Data(contentsOf: url)
            try bytes.prefix(bytes.count / 2).write(to: url)
        }), file: "train-labels-idx1-ubyte.gz", phrase: "truncated")
    }

    func testNotAFolder() {
        XCTAssertThrowsError(try MNIST.load(directory: "/nonexistent/ptrain")) { error in
            XCTAssert("\(error)".contains("is not a folder"))
        }
    }

    func testChecksumMismatchIsDetected() throws {
        let dir = try folder(tamper: { dir in
            try FileManager.default.copyItem(at: embeddedMNISTFolder.appendingPathComponent("SHA256SUMS"), to: dir.appendingPathComponent("SHA256SUMS"))
            try self.replace(dir, "t10k-labels-idx1-ubyte", with: idxBytes(dimensions: [10_000], elements: [UInt8](repeating: 3, count: 10_000)))
        })
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try MNIST.load(directory: dir.path, verifyChecksums: true)) { error in
            XCTAssert("\(error)".contains("does not match SHA256SUMS"), "\(error)")
        }
    }

    func testSHA256KnownAnswer() {
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
