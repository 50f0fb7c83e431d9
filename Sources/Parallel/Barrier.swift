import CSupport
import Synchronization

/// A reusable barrier for a fixed number of threads that stays fast when threads <= cores and does
/// not collapse when threads > cores.
///
/// Arrival is one atomic increment; the last arriver resets the count and publishes a new
/// generation. Waiters spin on the generation with the CPU's pause hint for up to `spinLimit`
/// rounds (about 0.1 µs round trips here, ../shared/NOTES.md), then call sched_yield in a loop, so a
/// descheduled thread that everyone waits for gets the CPU: a pure spin barrier measured 12-213 ms
/// per round with 8 threads on 2 cores, spin-then-yield about 8 µs.
public final class Barrier: @unchecked Sendable {
    public let parties: Int
    private let arrived = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    /// Pause rounds before yielding.
    public let spinLimit: Int

    /// `oversubscribed` (more threads than CPUs) shortens spinning to a few rounds: the thread being
    /// waited for may need this CPU. Otherwise spin up to about 100 µs before yielding.
    public init(parties: Int, oversubscribed: Bool) {
        precondition(parties > 0)
        self.parties = parties
        spinLimit = oversubscribed ? 64 : 20_000
    }

    public func wait() {
        let current = generation.load(ordering: .acquiring)
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == parties {
            arrived.store(0, ordering: .relaxed)
            generation.store(current &+ 1, ordering: .releasing)
            return
        }
        var spins = 0
        while generation.load(ordering: .acquiring) == current {
            if spins < spinLimit {
                csupport_cpu_relax()
                spins += 1
            } else {
                csupport_yield()
            }
        }
    }
}
