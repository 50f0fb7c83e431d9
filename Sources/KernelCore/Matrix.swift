/// A read-only strided view of a Float32 matrix: element (i, j) is `base[i * rowStride + j * columnStride]`.
/// A transpose is the same memory with the strides swapped, so `xᵀ` costs nothing to form.
public struct MatrixView {
    /// Element (0, 0).
    public var base: UnsafePointer<Float>
    /// The number of rows.
    public var rows: Int
    /// The number of columns.
    public var columns: Int
    /// Floats from one row to the next.
    public var rowStride: Int
    /// Floats from one column to the next (1 for row-major, the row length for a transpose).
    public var columnStride: Int

    /// A view of `rows` × `columns` floats at `base` with the given strides.
    @inlinable
    public init(_ base: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int, columnStride: Int = 1) {
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = rowStride
        self.columnStride = columnStride
    }

    /// Row-major `rows x columns` with no padding.
    @inlinable
    public init(rowMajor base: UnsafePointer<Float>, rows: Int, columns: Int) {
        self.init(base, rows: rows, columns: columns, rowStride: columns, columnStride: 1)
    }

    /// The transpose: the same memory with rows and columns (and their strides) swapped.
    @inlinable public var transposed: MatrixView {
        MatrixView(base, rows: columns, columns: rows, rowStride: columnStride, columnStride: rowStride)
    }

    /// Rows `range` of this view.
    @inlinable public func rows(_ range: Range<Int>) -> MatrixView {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows)
        return MatrixView(base + range.lowerBound * rowStride, rows: range.count, columns: columns,
                          rowStride: rowStride, columnStride: columnStride)
    }

    /// Element (i, j).
    @inlinable public subscript(i: Int, j: Int) -> Float {
        assert(i >= 0 && i < rows && j >= 0 && j < columns, "MatrixView index (\(i), \(j)) out of \(rows)x\(columns)")
        return base[i * rowStride + j * columnStride]
    }
}

/// A writable row-major view with a leading dimension: element (i, j) is `base[i * rowStride + j]`.
public struct MutableMatrixView {
    /// Element (0, 0).
    public var base: UnsafeMutablePointer<Float>
    /// The number of rows.
    public var rows: Int
    /// The number of columns.
    public var columns: Int
    /// Floats from one row to the next.
    public var rowStride: Int

    /// A view of `rows` × `columns` floats at `base`; `rowStride` defaults to `columns` (dense).
    @inlinable
    public init(_ base: UnsafeMutablePointer<Float>, rows: Int, columns: Int, rowStride: Int? = nil) {
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = rowStride ?? columns
    }

    /// The same matrix as a read-only view.
    @inlinable public var readOnly: MatrixView {
        MatrixView(UnsafePointer(base), rows: rows, columns: columns, rowStride: rowStride)
    }

    /// Rows `range` of this view.
    @inlinable public func rows(_ range: Range<Int>) -> MutableMatrixView {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows)
        return MutableMatrixView(base + range.lowerBound * rowStride, rows: range.count, columns: columns, rowStride: rowStride)
    }
}
