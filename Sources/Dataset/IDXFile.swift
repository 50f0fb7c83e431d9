/// A parsed IDX file (the format of MNIST, http://yann.lecun.com/exdb/mnist/): two zero bytes, an
/// element-type byte (0x08 = unsigned byte, the only type ptrain reads), a rank byte, `rank`
/// big-endian UInt32 dimensions, then the elements in row-major order.
public struct IDXFile {
    /// The header's dimension sizes, outermost first.
    public var dimensions: [Int]
    /// The elements, row-major; `count == dimensions.reduce(1, *)`.
    public var bytes: [UInt8]

    /// Validates the header of `raw` (already decompressed) against `expectedRank` and the real
    /// size, before any allocation that the header alone would justify.
    public init(parsing raw: consuming [UInt8], expectedRank: Int, path: String) throws {
        var raw = raw
        guard raw.count >= 4 else {
            throw DatasetError(path: path, problem: "is truncated: \(raw.count) bytes, shorter than the 4-byte IDX magic")
        }
        guard raw[0] == 0, raw[1] == 0 else {
            let magic = raw[0..<4].map { String($0, radix: 16) }.joined(separator: " ")
            throw DatasetError(path: path, problem: "wrong magic (\(magic)): not an IDX file")
        }
        guard raw[2] == 0x08 else {
            throw DatasetError(path: path, problem: "element type 0x\(String(raw[2], radix: 16)) is not unsigned byte (0x08)",
                               remedy: "ptrain reads 8-bit IDX images and labels only")
        }
        let rank = Int(raw[3])
        guard rank == expectedRank else {
            throw DatasetError(path: path, problem: "has rank \(rank), expected \(expectedRank) (\(expectedRank == 3 ? "images" : "labels"))")
        }
        let headerSize = 4 + 4 * rank
        guard raw.count >= headerSize else {
            throw DatasetError(path: path, problem: "is truncated inside its header (\(raw.count) of \(headerSize) bytes)")
        }
        var dims: [Int] = []
        var total = 1
        for axis in 0..<rank {
            let o = 4 + 4 * axis
            let d = Int(raw[o]) << 24 | Int(raw[o + 1]) << 16 | Int(raw[o + 2]) << 8 | Int(raw[o + 3])
            guard d > 0 else {
                throw DatasetError(path: path, problem: "dimension \(axis) is zero")
            }
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, product <= raw.count else {
                throw DatasetError(path: path, problem: "header claims \(dims + [d]) elements, more than the file's \(raw.count - headerSize) data bytes (truncated or corrupt)")
            }
            total = product
            dims.append(d)
        }
        let dataSize = raw.count - headerSize
        guard total == dataSize else {
            let what = total > dataSize ? "is truncated" : "has \(dataSize - total) trailing bytes"
            throw DatasetError(path: path, problem: "\(what): header \(dims) needs \(total) data bytes, file has \(dataSize)")
        }
        dimensions = dims
        raw.removeSubrange(0..<headerSize)  // in place when `raw` is uniquely owned: no second 47 MB copy
        bytes = raw
    }

    /// Parses a file's bytes, inflating them first when they are gzip-compressed (detected by the
    /// magic, not the name). `path` only names the file in errors.
    public init(fileBytes file: [UInt8], expectedRank: Int, path: String) throws {
        try self.init(parsing: Gzip.isGzip(file) ? try Gzip.decompress(file, path: path) : file, expectedRank: expectedRank, path: path)
    }

    /// Reads and parses `path`.
    public init(contentsOf path: String, expectedRank: Int) throws {
        try self.init(fileBytes: try FileBytes.read(path), expectedRank: expectedRank, path: path)
    }
}
