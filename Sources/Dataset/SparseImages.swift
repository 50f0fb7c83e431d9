import KernelCore

/// The images in compressed sparse rows (`KernelCore.SparseRows`): the columns and bytes of the
/// non-zero pixels of each image. MNIST keeps 150 of 784 pixels per image on average (density
/// 0.19), so layer 1 multiplies 5x fewer terms; 60,000 images take 27 MB (2 bytes of column and 1
/// byte of value per non-zero pixel) besides the 47 MB of dense bytes.
///
/// Values are the dense path's: the entry for byte p is `normalizePixels` of p, `Float(p) / 255`.
/// Built once at start-up in two passes over the pixels (count, then fill), with no intermediate
/// arrays, so the pages are first touched by the thread (and NUMA policy) that builds it.
public final class SparseImages: @unchecked Sendable {
    /// The number of images.
    public let count: Int
    /// Pixels per image (the row width of `rows`).
    public let pixelsPerImage: Int
    /// Non-zero pixels in all images.
    public let nonZeroCount: Int
    private let indices: UnsafeMutablePointer<UInt16>
    private let values: UnsafeMutablePointer<UInt8>
    private let table: UnsafeMutablePointer<Float>
    private let rowStart: UnsafeMutablePointer<Int>
    private let blockStart: UnsafeMutablePointer<UInt16>

    /// Whether images of this size can be stored: columns and per-image offsets are 16-bit.
    public static func supports(_ images: LabeledImages) -> Bool {
        images.pixelsPerImage >= 1 && images.pixelsPerImage <= SparseRows.maximumColumns
    }

    /// Fraction of non-zero pixels, estimated on every `stride`-th image (0 for an empty set):
    /// 3,750 of MNIST's 60,000 images with the default stride, a few milliseconds at start-up,
    /// and a deterministic function of the data.
    public static func density(_ images: LabeledImages, stride: Int = 16) -> Double {
        let n = images.pixelsPerImage
        guard images.count > 0, n > 0 else { return 0 }
        var nonZero = 0, sampled = 0
        images.pixels.withUnsafeBufferPointer { pixels in
            for image in Swift.stride(from: 0, to: images.count, by: stride) {
                nonZero += countNonZero(pixels.baseAddress! + image * n, n)
                sampled += n
            }
        }
        return Double(nonZero) / Double(sampled)
    }

    /// The sparse rows of `images` (every non-zero pixel, in column order).
    public init(_ images: LabeledImages) {
        precondition(Self.supports(images), "SparseImages: images of \(images.pixelsPerImage) pixels are not supported")
        let n = images.pixelsPerImage, count = images.count
        let blocks = SparseRows.blocksPerRow(columns: n)
        self.count = count
        pixelsPerImage = n
        let rowStart = UnsafeMutablePointer<Int>.allocate(capacity: count + 1)
        let blockStart = UnsafeMutablePointer<UInt16>.allocate(capacity: count * (blocks + 1) + 1)
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 256)
        let bytes = (0...255).map(UInt8.init)
        normalizePixels(bytes, count: 256, into: table)
        var total = 0
        images.pixels.withUnsafeBufferPointer { pixels in
            let base = pixels.baseAddress!
            for image in 0..<count {
                rowStart[image] = total
                total += Self.countNonZero(base + image * n, n)
            }
        }
        rowStart[count] = total
        let indices = UnsafeMutablePointer<UInt16>.allocate(capacity: total + 1)
        let values = UnsafeMutablePointer<UInt8>.allocate(capacity: total + 1)
        images.pixels.withUnsafeBufferPointer { pixels in
            for image in 0..<count {
                let row = pixels.baseAddress! + image * n
                let start = rowStart[image]
                var p = start
                let offsets = blockStart + image * (blocks + 1)
                for block in 0..<blocks {
                    offsets[block] = UInt16(p - start)
                    var column = block * SparseRows.blockWidth
                    let end = min(column + SparseRows.blockWidth, n)
                    while column < end {
                        // Skip 8 zero bytes at once: most of an MNIST image is zero border.
                        if column + 8 <= end && UnsafeRawPointer(row + column).loadUnaligned(as: UInt64.self) == 0 {
                            column += 8
                            continue
                        }
                        // Branch-free compaction: always write, advance only past a non-zero byte
                        // (one spare slot after the last entry takes the final zero's write).
                        let byte = row[column]
                        indices[p] = UInt16(column)
                        values[p] = byte
                        p += byte == 0 ? 0 : 1
                        column += 1
                    }
                }
                offsets[blocks] = UInt16(p - start)
            }
        }
        nonZeroCount = total
        (self.indices, self.values, self.table, self.rowStart, self.blockStart) = (indices, values, table, rowStart, blockStart)
    }

    deinit {
        indices.deallocate()
        values.deallocate()
        table.deallocate()
        rowStart.deallocate()
        blockStart.deallocate()
    }

    /// The view the kernels read; valid while this object lives.
    public var rows: SparseRows {
        SparseRows(rowCount: count, columns: pixelsPerImage, indices: indices, values: values, table: table,
                   rowStart: rowStart, blockStart: blockStart)
    }

    /// Non-zero bytes among `count` bytes, 8 at a time: for each byte of a word, the high bit of
    /// `((b & 0x7F) + 0x7F) | b` is set exactly when b ≠ 0, so a population count of those bits
    /// counts the word's non-zero bytes (plain integer code: fast on every target).
    static func countNonZero(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int {
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F, high: UInt64 = 0x8080_8080_8080_8080
        var total = 0, i = 0
        while i + 8 <= count {
            let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
            total += ((((w & low7) &+ low7) | w) & high).nonzeroBitCount
            i += 8
        }
        while i < count {
            if p[i] != 0 { total += 1 }
            i += 1
        }
        return total
    }
}
