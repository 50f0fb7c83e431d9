#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The scalar type of the reference twins: Float for comparing kernels like for like, Double for
/// the Float64 reference path that measures the fast kernels' error.
public protocol ReferenceReal: BinaryFloatingPoint {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
}

extension Float: ReferenceReal {
    public static func exp(_ x: Float) -> Float { expf(x) }
    public static func log(_ x: Float) -> Float { logf(x) }
}

extension Double: ReferenceReal {
    public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    public static func log(_ x: Double) -> Double { Glibc.log(x) }
}

/// Plain reference twins of every kernel: the lecture's formulas as scalar loops over row-major
/// arrays, with no tiling, no SIMD and libm's exp/log. Tests compare the fast kernels against them.
public enum Reference {
    /// c (m, n) = a (m, k) · b (k, n), accumulated in increasing k.
    public static func matmul<T: ReferenceReal>(_ a: [T], _ b: [T], m: Int, k: Int, n: Int) -> [T] {
        precondition(a.count == m * k && b.count == k * n)
        var c = [T](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k {
                let aip = a[i * k + p]
                for j in 0..<n { c[i * n + j] += aip * b[p * n + j] }
            }
        }
        return c
    }

    /// The transpose of a row-major (rows, columns) matrix.
    public static func transpose<T>(_ a: [T], rows: Int, columns: Int) -> [T] {
        var t = a
        for i in 0..<rows { for j in 0..<columns { t[j * rows + i] = a[i * columns + j] } }
        return t
    }

    public static func sigmoid<T: ReferenceReal>(_ x: T) -> T { 1 / (1 + T.exp(-x)) }

    /// softmax of one row, maximum subtracted first.
    public static func softmax<T: ReferenceReal>(_ row: ArraySlice<T>) -> [T] {
        let m = row.max()!
        let e = row.map { T.exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// −log(y[label] + 1e-7).
    public static func crossEntropy<T: ReferenceReal>(_ y: [T], label: Int) -> T {
        -T.log(y[label] + T(1e-7))
    }
}
