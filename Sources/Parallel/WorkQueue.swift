import CSupport
import Synchronization

/// Phases of independent work items shared by a pool of threads: the engine's only synchronisation.
///
/// Each phase has a number of items. A thread claims an item of the current phase with one
/// compare-and-swap on that item's claim word (the last phase that claimed it) and runs it; when it
/// finds nothing left to claim it adds the number it ran to the phase's done count, and the thread
/// whose addition completes the count runs the serial step (`complete`), which names the next
/// phase's item count (or ends the run), and publishes the next phase as one 64-bit word
/// (phase << 32 | item count), so a thread can never pair a phase with another phase's count.
///
/// Affinity: an item may have a home thread (`home`). A thread first runs its home items in item
/// order, claiming one at a time; then items without a home that are `ready`, scanning from its
/// own offset; then any item still unclaimed (other threads' home items) that is `ready`, from the
/// last one back, so a thread that is done early takes a slower thread's remaining items from the
/// far end while that thread works forward.
///
/// Items that depend on other items of their phase: an item that is not `ready` waits for items
/// that have not finished yet. A thread takes such an item only once it is ready, so no thread
/// waits inside an item for work nobody has started:
/// - A home item that is not ready (the engine's forward items, which need their block of W1
///   updated first) is left to its home thread, which runs it after the items it waits for (it
///   waits inside for any of those another thread took). A thread that finds none of its own or
///   homeless items left does not wait for it.
/// - An item without a home that is not ready yet (the engine's row items, which need the next
///   batch's layer one and W2 first) is taken by whichever thread finds it ready: a thread with
///   home items in the phase keeps scanning until every such item is claimed (spinning, then
///   yielding the CPU), a thread without any leaves it to them. So a phase with items of this kind
///   needs a home item for at least one thread, and every item they wait for must be a home item or
///   an item without a home that is always ready (a chain of not-ready homeless items could leave
///   all threads scanning past each other; none exists in the engine).
/// So while the threads keep pace, an item runs on its home thread every iteration and the
/// data it updates (a block of W1) stays in one core's caches; a thread that is slow, descheduled
/// or asleep delays nobody for long, because the others take its unclaimed items.
///
/// Why items rather than a fixed share per thread behind a barrier: a barrier needs every thread
/// to arrive, so with more threads than CPUs each phase waits for descheduled threads (a spinning
/// barrier's round then lasts until the scheduler has run every one of them). Here a phase
/// ends when its items are done, by whichever threads are running. Which thread runs which item
/// never changes the results (docs/reproducibility.md).
///
/// Waiting for the next phase escalates: spin with the pause hint (fast hand-off, about 0.1 µs,
/// while threads <= CPUs), then `sched_yield`, then sleep on a futex; the publisher wakes sleepers.
public final class WorkQueue: @unchecked Sendable {
    /// phase << 32 | item count of the published phase.
    private let state: Atomic<UInt64>
    private let done = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)
    /// Per item: the last phase that claimed it (initially "phase −1"). Packed, 16 to a cache line:
    /// a thread scans the words of items it does not take, and a scan of a few lines is cheaper
    /// than one line per item (items taken by another core would each cost a transfer).
    private let claims: UnsafeMutablePointer<UInt32>
    /// The published phase (32 bits, so a futex can sleep on it).
    private let published: UnsafeMutablePointer<UInt32>
    public let capacity: Int
    /// Threads that will call `work`: each starts its search for items without a home at its own
    /// offset (thread t at t/threads of the phase), so threads rarely contend for the same item.
    public let threads: Int
    public let spinLimit: Int
    public let yieldLimit: Int

    /// `capacity`: the most items any phase will have. `oversubscribed` (more threads than CPUs):
    /// waiting threads spin briefly and soon sleep, leaving the CPUs to threads that have items;
    /// otherwise they spin up to about 100 µs first.
    public init(firstPhaseItems: Int, capacity: Int, threads: Int = 1, oversubscribed: Bool) {
        precondition(firstPhaseItems > 0 && firstPhaseItems <= capacity && capacity <= Int(UInt32.max) && threads >= 1)
        self.threads = threads
        state = Atomic(UInt64(firstPhaseItems))
        self.capacity = capacity
        claims = .allocate(capacity: capacity)
        claims.initialize(repeating: UInt32.max, count: capacity)
        published = .allocate(capacity: 1)
        published.initialize(to: 0)
        spinLimit = oversubscribed ? 50 : 20_000
        yieldLimit = oversubscribed ? 3 : 100
    }

    deinit {
        claims.deallocate()
        published.deallocate()
    }

    /// Run by every thread of the pool. `worker` is this thread's index, compared with
    /// `home(phase, item)` (nil: no home, any thread); threads may share one (the engine gives
    /// the threads on a CPU its lead's, `Placement.lead`), and then split those home items.
    /// `ready(phase, item)` says whether the items it waits for are done, so that a thread other
    /// than its home (any thread, for an item without a home) may take it now (the type's comment
    /// says what a not-ready item may wait for). `execute(phase, item)` runs one item;
    /// `complete(phase)` runs once per phase, on the thread whose count of items run completed the
    /// phase's done count, and returns the next phase's item count (1...capacity), or nil to end
    /// the run. Returns when the run has ended.
    public func work(worker: Int, home: (_ phase: UInt32, _ item: Int) -> Int?,
                     ready: (_ phase: UInt32, _ item: Int) -> Bool = { _, _ in true },
                     execute: (_ phase: UInt32, _ item: Int) -> Void, complete: (_ phase: UInt32) -> Int?) {
        var phase: UInt32 = 0
        while true {
            waitForPhase(atLeast: phase)
            if finished.load(ordering: .acquiring) { return }
            let s = state.load(ordering: .acquiring)
            phase = UInt32(truncatingIfNeeded: s >> 32)
            let count = Int(truncatingIfNeeded: s & 0xFFFF_FFFF)
            var ran = 0
            func run(_ item: Int) {
                execute(phase, item)
                ran += 1
            }
            // Home items first, in item order, one claim at a time (so a thread that is done
            // with its own can take the rest of a slower thread's, from the other end).
            var hasHomeItems = false
            for item in 0..<count where home(phase, item) == worker {
                hasHomeItems = true
                if claim(item, phase) { run(item) }
            }
            let offset = worker >= 0 ? worker % threads * count / threads : 0
            var rounds = 0
            while true {
                // Then items without a home that are ready, starting at this thread's offset.
                var waiting = false
                for j in 0..<count {
                    let item = (offset + j) % count
                    guard home(phase, item) == nil && unclaimed(item, phase) else { continue }
                    if !ready(phase, item) {
                        waiting = true
                    } else if claim(item, phase) {
                        run(item)
                    }
                }
                // Then other threads' home items that are still unclaimed and ready, last first.
                for item in (0..<count).reversed() where unclaimed(item, phase) && ready(phase, item) && claim(item, phase) { run(item) }
                // Homeless items that were not ready: a thread with home items stays until they are taken.
                guard waiting && hasHomeItems else { break }
                if rounds < spinLimit { csupport_cpu_relax() } else { csupport_yield() }
                rounds += 1
            }
            // Count this thread's items once (one shared atomic per thread and phase, not per
            // item); the thread whose count completes the phase runs the serial step. A thread
            // that ran none adds nothing, so no late addition can reach the next phase's count.
            if ran > 0 && done.wrappingAdd(ran, ordering: .acquiringAndReleasing).newValue == count {
                done.store(0, ordering: .relaxed)
                if let next = complete(phase) {
                    precondition(next > 0 && next <= capacity, "a phase has 1 to \(capacity) items")
                    state.store(UInt64(phase &+ 1) << 32 | UInt64(next), ordering: .releasing)
                } else {
                    finished.store(true, ordering: .releasing)
                }
                publish(phase &+ 1)
            }
            phase &+= 1
        }
    }

    /// Whether no thread has claimed `item` for `phase` (or a later phase) yet: one load, no write.
    private func unclaimed(_ item: Int, _ phase: UInt32) -> Bool {
        Int32(bitPattern: phase &- csupport_load_u32(claims + item)) > 0
    }

    /// Claims `item` for `phase` unless some thread already did (its word holds `phase`) — or a
    /// later phase did, which a thread that fell behind must not take.
    private func claim(_ item: Int, _ phase: UInt32) -> Bool {
        let word = claims + item
        let last = csupport_load_u32(word)
        guard Int32(bitPattern: phase &- last) > 0 else { return false }
        return csupport_cas_u32(word, last, phase) != 0
    }

    /// Raises the published phase to `phase` (never lowers it), then loads `sleepers`: the
    /// compare-and-swap is sequentially consistent and pairs with a sleeper's increment-then-futex-
    /// check, so a sleeper either sees the new phase or is woken.
    ///
    /// Phases can complete out of publishing order: a thread that comes late to the phase it
    /// waited for reads the newest `state`, which may name a phase whose completer has not
    /// published it yet, and can finish that phase and publish the next before the older completer
    /// publishes. A plain store would then move the word back, and threads waiting for the newer
    /// phase would sleep forever (the thread-sanitizer run of `ParallelTests` found it).
    private func publish(_ phase: UInt32) {
        var current = csupport_load_u32(published)
        while Int32(bitPattern: phase &- current) > 0 && csupport_cas_u32(published, current, phase) == 0 {
            current = csupport_load_u32(published)
        }
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 { csupport_futex_wake_all(published) }
    }

    /// Returns once the published phase is `phase` or later (threads may skip phases others finished).
    private func waitForPhase(atLeast phase: UInt32) {
        var rounds = 0
        while true {
            let now = csupport_load_u32(published)
            if Int32(bitPattern: now &- phase) >= 0 || finished.load(ordering: .acquiring) { return }
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
