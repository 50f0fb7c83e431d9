import Synchronization

/// One work item as a worker ran it: what `Trainer.run(trace:)` returns and `ptrain --trace`
/// writes. A run's trace shows the schedule of docs/architecture.md as it happened: which worker
/// took which item, how long each took, and the gaps between them (waiting, hand-offs).
public struct TraceEvent: Sendable, Equatable {
    /// The worker (thread) that ran it.
    public var worker: Int
    /// The iteration (0-based, counted from the first iteration of the run, so a resumed run
    /// continues the numbering) whose phase held the item.
    public var iteration: Int
    /// The item's index among its phase's items.
    public var item: Int
    /// What it did, e.g. "W1 rows 56..<112" (`Schedule.describe`).
    public var name: String
    /// "compute" or "reduction", as the run's phase times count it (`PhaseTimes`).
    public var category: String
    /// Seconds from the start of the training loop to the item's start.
    public var start: Double
    /// Seconds the item took.
    public var duration: Double
}

/// Records the items of some iterations into storage allocated before the loop, so that tracing
/// adds one atomic increment and one store to each traced item and nothing to the others.
final class ItemRecorder: @unchecked Sendable {
    struct Record {
        var worker: Int32
        var phase: UInt32
        var item: Int32
        var start: Int64
        var end: Int64
    }

    /// Iterations (0-based, as the loop counts them) to record.
    let iterations: Range<Int>
    private let records: UnsafeMutablePointer<Record>
    private let capacity: Int
    private let next = Atomic<Int>(0)

    /// Room for `itemsPerIteration` items in each of `iterations`.
    init(iterations: Range<Int>, itemsPerIteration: Int) {
        self.iterations = iterations
        capacity = iterations.count * itemsPerIteration
        records = .allocate(capacity: max(capacity, 1))
    }

    deinit { records.deallocate() }

    /// Called by the worker that ran the item, for an item of a recorded iteration.
    func record(worker: Int, phase: UInt32, item: Int, start: MonotonicInstant, end: MonotonicInstant) {
        let slot = next.wrappingAdd(1, ordering: .relaxed).oldValue
        precondition(slot < capacity, "more items than the schedule's per-iteration count")
        records[slot] = Record(worker: Int32(worker), phase: phase, item: Int32(item), start: start.nanoseconds, end: end.nanoseconds)
    }

    /// The records, in no particular order. Read only after the workers have joined.
    var recorded: [Record] { Array(UnsafeBufferPointer(start: records, count: next.load(ordering: .relaxed))) }
}
