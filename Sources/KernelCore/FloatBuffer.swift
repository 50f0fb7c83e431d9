/// An owned, 64-byte-aligned, zero-initialised Float32 buffer: the one place where kernel memory is
/// allocated, so that the training loop itself allocates nothing.
///
/// Sharing an instance across threads is safe when threads write disjoint ranges between
/// synchronisation points (the engine's work-queue phases); the class adds no locking.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
