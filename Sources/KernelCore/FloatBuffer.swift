/// An owned, 64-byte-aligned, zero-initialised Float32 buffer: the one place where kernel memory is
/// allocated, so that the training loop itself allocates nothing.
///
/// `slack` zero floats follow the `count` usable ones, so a kernel may load a whole SIMD8 vector
/// for a row's last few elements (the sparse kernels do) without leaving the allocation.
///
/// Sharing an instance across threads is safe when threads write disjoint ranges between
/// synchronisation points (the engine's work-queue phases); the class adds no locking.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public static let slack = 8

    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        let allocated = count + Self.slack
        let raw = UnsafeMutableRawPointer.allocate(byteCount: allocated * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: allocated)
        pointer.initialize(repeating: 0, count: allocated)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
