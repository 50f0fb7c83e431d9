import CSupport
import Synchronization

/// Phases of independent work items shared by a pool of threads: the engine's only synchronisation.
///
/// Each phase has a number of items. Every thread grabs items of the current phase with one atomic
/// compare-and-swap on a word that holds (phase, item count, next item) — one word, so a thread
/// can never pair a phase with another phase's count — runs them, and counts them done; the
/// thread that completes the last item runs the serial step (`complete`), which names the next
/// phase's item count (or ends the run), and publishes the next phase.
///
/// Why dynamic items rather than a fixed share per thread behind a barrier: a barrier needs every
/// thread to arrive, so with more threads than CPUs each phase waits for descheduled threads (a
/// pure spin barrier measured 12-213 ms per round with 8 threads on 2 CPUs, ../shared/NOTES.md).
/// Here a phase ends when its items are done, by whichever threads are running; a thread that is
/// descheduled or asleep delays nobody. It also balances load when a CPU is shared with other work.
/// Which thread runs which item never changes the results (docs/reproducibility.md).
///
/// Waiting for the next phase escalates: spin with the pause hint (fast hand-off, about 0.1 µs,
/// while threads <= CPUs), then `sched_yield`, then sleep on a futex; the publisher wakes sleepers.
public final class WorkQueue: @unchecked Sendable {
    /// phase << 32 | item count << 16 | next item.
    private let cursor: Atomic<UInt64>
    private let done = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)
    /// The published phase (32 bits, so a futex can sleep on it).
    private let published: UnsafeMutablePointer<UInt32>
    public let spinLimit: Int
    public let yieldLimit: Int

    /// `oversubscribed` (more threads than CPUs): waiting threads spin briefly and soon sleep,
    /// leaving the CPUs to threads that have items; otherwise they spin up to about 100 µs first.
    /// The most items a phase may have (16 bits of the cursor word).
    public static let maximumItems = 65_535

    public init(firstPhaseItems: Int, oversubscribed: Bool) {
        precondition(firstPhaseItems > 0 && firstPhaseItems <= Self.maximumItems)
        cursor = Atomic(UInt64(firstPhaseItems) << 16)
        published = .allocate(capacity: 1)
        published.initialize(to: 0)
        spinLimit = oversubscribed ? 50 : 20_000
        yieldLimit = oversubscribed ? 3 : 100
    }

    deinit { published.deallocate() }

    /// Run by every thread of the pool. `execute(phase, item)` runs one item; `complete(phase)`
    /// runs once per phase on the thread that finished its last item and returns the next phase's
    /// item count (> 0), or nil to end the run. Returns when the run has ended.
    public func work(execute: (_ phase: UInt32, _ item: Int) -> Void, complete: (_ phase: UInt32) -> Int?) {
        var phase: UInt32 = 0
        while true {
            phase = waitForPhase(atLeast: phase)
            if finished.load(ordering: .acquiring) { return }
            while true {
                let c = cursor.load(ordering: .acquiring)
                let item = Int(c & 0xFFFF), count = Int(c >> 16 & 0xFFFF)
                guard UInt32(truncatingIfNeeded: c >> 32) == phase, item < count else { break }
                guard cursor.compareExchange(expected: c, desired: c + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
                execute(phase, item)
                if done.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == count {
                    done.store(0, ordering: .relaxed)
                    if let next = complete(phase) {
                        precondition(next > 0 && next <= Self.maximumItems, "a phase has 1 to 65535 items")
                        cursor.store(UInt64(phase &+ 1) << 32 | UInt64(next) << 16, ordering: .releasing)
                    } else {
                        finished.store(true, ordering: .releasing)
                    }
                    publish(phase &+ 1)
                }
            }
            phase &+= 1
        }
    }

    /// Sequentially consistent store of the phase, then a load of `sleepers`: pairs with a sleeper's
    /// increment-then-futex-check, so a sleeper either sees the new phase or is woken.
    private func publish(_ phase: UInt32) {
        csupport_store_u32(published, phase)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 { csupport_futex_wake_all(published) }
    }

    /// The published phase once it is `phase` or later (threads may skip phases others finished).
    private func waitForPhase(atLeast phase: UInt32) -> UInt32 {
        var rounds = 0
        while true {
            let now = csupport_load_u32(published)
            if Int32(bitPattern: now &- phase) >= 0 || finished.load(ordering: .acquiring) { return now }
            if rounds < spinLimit {
                csupport_cpu_relax()
            } else if rounds < spinLimit + yieldLimit {
                csupport_yield()
            } else {
                sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                csupport_futex_wait(published, now)
                sleepers.wrappingSubtract(1, ordering: .relaxed)
            }
            rounds += 1
        }
    }
}
