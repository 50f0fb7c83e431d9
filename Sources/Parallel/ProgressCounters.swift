import CSupport
import Synchronization

/// Counters that only grow, one per group of work items, for an item that must wait inside a
/// `WorkQueue` phase until other items of the same phase are done (the engine's forward items of a
/// k-block wait for that block's W1 updates). Counting on across phases (a target of n items per
/// phase is n·(phases so far)) needs no reset between phases.
///
/// `add` publishes the item's writes (release); `wait` and `reached` see them (acquire).
public final class ProgressCounters: @unchecked Sendable {
    /// Counter g is element g·`spacing`: 64 bytes apart, so groups counted by different threads
    /// never share a cache line.
    private let counters: UnsafeMutablePointer<Atomic<Int>>
    private let count: Int
    private static let spacing = 64 / MemoryLayout<Atomic<Int>>.stride
    /// Waiting spins this many rounds with the pause hint before it starts yielding the CPU (a
    /// waited-for item on a descheduled thread then gets the CPU).
    private let spinLimit: Int

    /// `oversubscribed` (more threads than CPUs): yield after a short spin, as `WorkQueue` does.
    public init(count: Int, oversubscribed: Bool) {
        self.count = count
        counters = .allocate(capacity: max(count, 1) * Self.spacing)
        for g in 0..<count { (counters + g * Self.spacing).initialize(to: Atomic(0)) }
        spinLimit = oversubscribed ? 50 : 20_000
    }

    deinit {
        for g in 0..<count { _ = (counters + g * Self.spacing).move() }
        counters.deallocate()
    }

    /// Counts one done item of `group`.
    public func add(_ group: Int) {
        precondition(group >= 0 && group < count)
        counters[group * Self.spacing].wrappingAdd(1, ordering: .releasing)
    }

    /// Whether `group` has counted `target` items.
    public func reached(_ group: Int, _ target: Int) -> Bool {
        precondition(group >= 0 && group < count)
        return counters[group * Self.spacing].load(ordering: .acquiring) >= target
    }

    /// Returns once `group` has counted `target` items.
    public func wait(_ group: Int, until target: Int) {
        var rounds = 0
        while !reached(group, target) {
            if rounds < spinLimit { csupport_cpu_relax() } else { csupport_yield() }
            rounds += 1
        }
    }
}
