import Foundation

/// The training and test splits of an MNIST-format dataset.
///
/// The genuine MNIST (Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0) ships with ptrain as a
/// resource and is the default; `load(directory:)` reads any folder with the four standard IDX
/// names, gzipped (`.gz`) or not, such as Fashion-MNIST.
public struct MNIST: Sendable {
    /// The 60,000 training images (or the `--data` folder's training set).
    public let train: LabeledImages
    /// The 10,000 test images.
    public let test: LabeledImages
    /// Where the data came from (a folder path).
    public let source: String
    /// SHA-256 over the four decompressed files' digests in the order train images, train labels,
    /// test images, test labels: identifies the dataset in checkpoints and reports.
    public let sha256: String

    /// The standard file stems, in the order above.
    public static let fileStems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    /// Loads the embedded MNIST and checks each decompressed file against SHA256SUMS.
    public static func loadEmbedded() throws -> MNIST {
        guard let folder = Bundle.module.url(forResource: "MNIST", withExtension: nil)?.path else {
            throw DatasetError(path: "MNIST resource", problem: "the embedded dataset is missing from the build",
                               remedy: "rebuild ptrain with `swift build -c release`, or pass --data DIR")
        }
        return try load(directory: folder, verifyChecksums: true)
    }

    /// Loads a folder holding the four IDX files. With `verifyChecksums`, the folder must hold a
    /// `SHA256SUMS` listing each uncompressed file, and every file must match.
    public static func load(directory: String, verifyChecksums: Bool = false) throws -> MNIST {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError(path: directory, problem: "is not a folder",
                               remedy: "--data DIR must name a folder holding the four MNIST-format IDX files")
        }
        let expected = verifyChecksums ? try readChecksums(directory) : [:]
        // The four files are independent: decompress them concurrently (the training images take
        // about 0.17 s alone, which is most of the start-up).
        let paths = try fileStems.map { try locate(stem: $0, in: directory) }
        let results = ConcurrentResults<IDXFile>(count: 4)
        let digests = ConcurrentResults<String>(count: 4)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            results.set(i) {
                let file = try FileBytes.read(paths[i])
                let raw = Gzip.isGzip(file) ? try Gzip.decompress(file, path: paths[i]) : file
                digests.set(i) { SHA256.hex(raw) }
                if let want = expected[fileStems[i]] {
                    let got = try digests.get(i)
                    guard got == want else {
                        throw DatasetError(path: paths[i], problem: "SHA-256 \(got.prefix(16))... does not match SHA256SUMS (\(want.prefix(16))...): the file is corrupt or was replaced",
                                           remedy: "restore the file from the ptrain repository")
                    }
                }
                return try IDXFile(parsing: raw, expectedRank: i % 2 == 0 ? 3 : 1, path: paths[i])
            }
        }
        let files = try (0..<4).map { try results.get($0) }
        let train = try LabeledImages(images: files[0], imagesPath: paths[0], labels: files[1], labelsPath: paths[1])
        let test = try LabeledImages(images: files[2], imagesPath: paths[2], labels: files[3], labelsPath: paths[3])
        guard train.rows == test.rows, train.columns == test.columns else {
            throw DatasetError(path: paths[2], problem: "images are \(test.rows)x\(test.columns) but training images are \(train.rows)x\(train.columns)")
        }
        let combined = try (0..<4).map { try digests.get($0) }.joined(separator: "\n")
        return MNIST(train: train, test: test, source: directory, sha256: SHA256.hex(Array(combined.utf8)))
    }

    /// `DIR/stem`, else `DIR/stem.gz`.
    static func locate(stem: String, in directory: String) throws -> String {
        let plain = directory + "/" + stem
        if FileManager.default.fileExists(atPath: plain) { return plain }
        let gz = plain + ".gz"
        if FileManager.default.fileExists(atPath: gz) { return gz }
        throw DatasetError(path: plain, problem: "missing (neither \(stem) nor \(stem).gz exists)",
                           remedy: "--data DIR must hold the four files \(fileStems.joined(separator: ", ")), optionally gzipped")
    }

    /// Parses `sha256sum` output: "<64 hex>  <name>" per line.
    static func readChecksums(_ directory: String) throws -> [String: String] {
        let path = directory + "/SHA256SUMS"
        let text = String(decoding: try FileBytes.read(path), as: UTF8.self)
        var sums: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].count == 64 else {
                throw DatasetError(path: path, problem: "malformed line \"\(line)\"", remedy: "restore SHA256SUMS from the ptrain repository")
            }
            sums[String(parts[1].hasPrefix("*") ? parts[1].dropFirst() : parts[1])] = String(parts[0])
        }
        return sums
    }
}

/// Results written by `concurrentPerform` iterations, each to its own slot. Safe to share because
/// each slot is written by exactly one iteration and read only after `concurrentPerform` returned.
private final class ConcurrentResults<T>: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Result<T, Error>?>
    private let count: Int
    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil, count: count)
    }
    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }
    func set(_ i: Int, _ body: () throws -> T) { slots[i] = Result { try body() } }
    func get(_ i: Int) throws -> T { try slots[i]!.get() }
}
