import CNuma

/// Read-only bytes placed on one NUMA node (a numa_alloc_onnode copy), or the original array when
/// the machine has one node or libnuma is unavailable: there a copy would only cost memory.
public final class NodeLocalBytes: @unchecked Sendable {
    /// The number of bytes.
    public let count: Int
    /// The node the copy lives on.
    public let node: Int
    private let region: UnsafeMutableRawPointer?
    private let array: [UInt8]

    /// `bytes` on `node` (a copy when `replicate`, else the array itself).
    public init(_ bytes: [UInt8], node: Int, replicate: Bool) {
        count = bytes.count
        self.node = node
        if replicate, numa_available() >= 0, let raw = numa_alloc_onnode(max(bytes.count, 1), Int32(node)) {
            bytes.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            region = raw
            array = []
        } else {
            region = nil
            array = bytes
        }
    }

    /// Whether the bytes were copied onto `node`.
    public var isNodeLocalCopy: Bool { region != nil }

    /// Calls `body` with the bytes' address, valid only inside it.
    public func withBytes<R>(_ body: (UnsafePointer<UInt8>) throws -> R) rethrows -> R {
        if let region { return try body(UnsafePointer(region.assumingMemoryBound(to: UInt8.self))) }
        return try array.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    deinit {
        if let region { numa_free(region, max(count, 1)) }
    }
}

/// Memory placement for data built in place (rather than copied, as `NodeLocalBytes` does).
public enum NodeMemory {
    /// Runs `body` with the calling thread's allocations preferring NUMA node `node` when `when`
    /// holds and libnuma works, so the pages `body` first touches land there; then restores the
    /// default (local) policy. With one node or without libnuma it just runs `body`.
    public static func preferring<R>(node: Int, when: Bool, _ body: () throws -> R) rethrows -> R {
        guard when, numa_available() >= 0 else { return try body() }
        numa_set_preferred(Int32(node))
        defer { numa_set_localalloc() }
        return try body()
    }
}
