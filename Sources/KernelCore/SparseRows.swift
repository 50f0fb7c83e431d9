/// A read-only view of byte-valued rows stored sparsely (compressed sparse rows): for each row,
/// the columns of its non-zero bytes in increasing order and those bytes. Layer 1 of the network
/// multiplies such rows (MNIST images: 19% of the pixels are non-zero) without touching the zeros.
///
/// Layout, for row r (0 ≤ r < rowCount):
/// - entries `rowStart[r] ..< rowStart[r + 1]` of `indices` (column, increasing) and `values` (byte);
/// - the value of an entry is `table[byte]` (for pixels, `Float(byte) / 255`, the dense path's value);
/// - `blockStart[r * (blocksPerRow + 1) + b]` is the offset, from `rowStart[r]`, of the row's first
///   entry with column ≥ b · `blockWidth`, for b = 0 ... blocksPerRow (the last one is the row's
///   entry count), so a column range is found without scanning the row.
///
/// The owner (`Dataset.SparseImages`) keeps the memory alive while views are in use.
public struct SparseRows: @unchecked Sendable {
    /// Columns per block of the `blockStart` table. 56 divides 392, the split point of the GEMM's
    /// two k-blocks for 784 inputs (`GEMM.kBlock(_:of:)`), and is the row count of a parameter-phase item.
    public static let blockWidth = 56

    /// The number of rows.
    public let rowCount: Int
    /// The dense row width.
    public let columns: Int
    /// Every entry's column, row after row.
    public let indices: UnsafePointer<UInt16>
    /// Every entry's byte, in the order of `indices`.
    public let values: UnsafePointer<UInt8>
    /// Byte -> Float value (256 entries).
    public let table: UnsafePointer<Float>
    /// Row r's first entry; `rowStart[rowCount]` is the entry count.
    public let rowStart: UnsafePointer<Int>
    /// Per row, the offsets of its column blocks' first entries (see above).
    public let blockStart: UnsafePointer<UInt16>

    /// A view of memory laid out as above; the owner keeps it alive.
    public init(rowCount: Int, columns: Int, indices: UnsafePointer<UInt16>, values: UnsafePointer<UInt8>,
                table: UnsafePointer<Float>, rowStart: UnsafePointer<Int>, blockStart: UnsafePointer<UInt16>) {
        precondition(columns >= 1 && columns <= SparseRows.maximumColumns)
        self.rowCount = rowCount
        self.columns = columns
        self.indices = indices
        self.values = values
        self.table = table
        self.rowStart = rowStart
        self.blockStart = blockStart
    }

    /// Column indices are UInt16 and per-row offsets in `blockStart` too.
    public static let maximumColumns = Int(UInt16.max)

    /// Blocks per row: ⌈columns / blockWidth⌉.
    @inlinable public static func blocksPerRow(columns: Int) -> Int { (columns + blockWidth - 1) / blockWidth }

    /// Column blocks of `blockWidth` per row.
    @inlinable public var blocksPerRow: Int { Self.blocksPerRow(columns: columns) }

    /// The entries of `row`.
    @inlinable public func entries(_ row: Int) -> Range<Int> { rowStart[row]..<rowStart[row + 1] }

    /// The index of the first entry of `row` whose column is ≥ `column` (the row's end if none).
    @inlinable
    public func position(_ row: Int, firstColumnAtLeast column: Int) -> Int {
        let start = rowStart[row]
        if column >= columns { return rowStart[row + 1] }
        let table = blockStart + row * (blocksPerRow + 1), block = column / Self.blockWidth
        return scan(from: start + Int(table[block]), to: start + Int(table[block + 1]), column: column)
    }

    /// The entries of `row` with columns in `range`.
    @inlinable
    public func entries(_ row: Int, columns range: Range<Int>) -> Range<Int> {
        position(row, firstColumnAtLeast: range.lowerBound)..<position(row, firstColumnAtLeast: range.upperBound)
    }

    /// Writes the absolute entry index where each block of `row` starts, and the row's end
    /// (`blocksPerRow + 1` values): a batch keeps these for its rows so that finding a column range
    /// reads one small contiguous table instead of two random lines per row (`entries(offsets:columns:)`).
    @inlinable
    public func blockOffsets(_ row: Int, into out: UnsafeMutablePointer<Int>) {
        let start = rowStart[row], table = blockStart + row * (blocksPerRow + 1)
        for b in 0...blocksPerRow { out[b] = start + Int(table[b]) }
    }

    /// The entries with columns in `range` of the row whose `blockOffsets` are `offsets`.
    @inlinable
    public func entries(offsets: UnsafePointer<Int>, columns range: Range<Int>) -> Range<Int> {
        func position(_ column: Int) -> Int {
            if column >= columns { return offsets[blocksPerRow] }
            let block = column / Self.blockWidth
            return scan(from: offsets[block], to: offsets[block + 1], column: column)
        }
        return position(range.lowerBound)..<position(range.upperBound)
    }

    /// The first entry in `p..<end` (one block of a row) with column ≥ `column`, else `end`.
    /// A column on a block boundary needs no scan (and no load of the row's entries).
    @inlinable
    func scan(from p: Int, to end: Int, column: Int) -> Int {
        if column % Self.blockWidth == 0 { return p }
        var p = p
        while p < end && Int(indices[p]) < column { p += 1 }
        return p
    }
}
