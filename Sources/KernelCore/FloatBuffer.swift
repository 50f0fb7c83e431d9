/// An owned, 64-byte-aligned, zero-initialised Float32 buffer: the one place where kernel memory is
/// allocated, so that the training loop itself allocates nothing.
///
/// `slack` zero floats follow the `count` usable ones, so a kernel may load a whole SIMD8 vector
/// for a row's last few elements (the sparse kernels do) without leaving the allocation.
///
/// Sharing an instance across threads is safe when threads write disjoint ranges between
/// synchronisation points (the engine's work-queue phases); the class adds no locking.
public final class FloatBuffer: @unchecked Sendable {
    /// The usable floats.
    public let count: Int
    /// The first float, 64-byte aligned.
    public let pointer: UnsafeMutablePointer<Float>

    /// Zero floats after the usable ones: one SIMD8 vector.
    public static let slack = 8

    /// `count` zero floats (and `slack` more).
    public init(count: Int) {
        self.count = count
        pointer = Self.allocate(count: count)
    }

    deinit { Self.deallocate(pointer) }

    /// `count` zero floats and `slack` more, 64-byte aligned, for an owner that keeps raw pointers
    /// (a ring of buffers read by every worker, where a class reference would be reference-counted
    /// on each read); free with `deallocate`.
    public static func allocate(count: Int) -> UnsafeMutablePointer<Float> {
        precondition(count >= 0)
        let allocated = count + slack
        let raw = UnsafeMutableRawPointer.allocate(byteCount: allocated * 4, alignment: 64)
        let pointer = raw.bindMemory(to: Float.self, capacity: allocated)
        pointer.initialize(repeating: 0, count: allocated)
        return pointer
    }

    /// Frees memory this type allocated (for owners that keep only the pointer).
    public static func deallocate(_ pointer: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(pointer).deallocate() }

    /// The usable floats as a buffer.
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
