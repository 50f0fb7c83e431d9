import KernelCore

/// The images in compressed sparse rows (`KernelCore.SparseRows`): the columns and bytes of the
/// non-zero pixels of each image. MNIST keeps 150 of 784 pixels per image on average (density
/// 0.19), so layer 1 multiplies 5x fewer terms; 60,000 images take 27 MB (2 bytes of column and 1
/// byte of value per non-zero pixel) besides the 47 MB of dense bytes.
///
/// Values are the dense path's: the entry for byte p is `Float(p) / 255` (`normalizePixels`).
/// Built once at start-up in two passes over the pixels (count, then fill), with no intermediate
/// arrays, so the pages are first touched by the thread (and NUMA policy) that builds it.
public final class SparseImages: @unchecked Sendable {
    public let count: Int
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

    /// Fraction of non-zero pixels over all images (0 for an empty set).
    public static func density(_ images: LabeledImages) -> Double {
        guard images.pixels.count > 0 else { return 0 }
        return Double(images.pixels.withUnsafeBufferPointer { countNonZero($0.baseAddress!, $0.count) }) / Double(images.pixels.count)
    }

    public init(_ images: LabeledImages) {
        precondition(Self.supports(images), "SparseImages: images of \(images.pixelsPerImage) pixels are not supported")
        let n = images.pixelsPerImage, count = images.count
        let blocks = SparseRows.blocksPerRow(columns: n)
        self.count = count
        pixelsPerImage = n
        let rowStart = UnsafeMutablePointer<Int>.allocate(capacity: count + 1)
        let blockStart = UnsafeMutablePointer<UInt16>.allocate(capacity: count * (blocks + 1) + 1)
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 256)
        for p in 0..<256 { table[p] = Float(p) / 255 }
        var total = 0
        images.pixels.withUnsafeBufferPointer { pixels in
            let base = pixels.baseAddress!
            for image in 0..<count {
                rowStart[image] = total
                total += Self.countNonZero(base + image * n, n)
            }
        }
        rowStart[count] = total
        let indices = UnsafeMutablePointer<UInt16>.allocate(capacity: max(total, 1))
        let values = UnsafeMutablePointer<UInt8>.allocate(capacity: max(total, 1))
        images.pixels.withUnsafeBufferPointer { pixels in
            for image in 0..<count {
                let row = pixels.baseAddress! + image * n
                let start = rowStart[image]
                var p = start
                let offsets = blockStart + image * (blocks + 1)
                for block in 0..<blocks {
                    offsets[block] = UInt16(p - start)
                    for column in block * SparseRows.blockWidth..<min((block + 1) * SparseRows.blockWidth, n) where row[column] != 0 {
                        indices[p] = UInt16(column)
                        values[p] = row[column]
                        p += 1
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

    /// Non-zero bytes among `count` bytes (a plain loop the compiler vectorizes).
    static func countNonZero(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int {
        var nonZero = 0
        for i in 0..<count { nonZero &+= p[i] == 0 ? 0 : 1 }
        return nonZero
    }
}
