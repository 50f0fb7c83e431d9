import Synchronization

/// One work item, or one serial step, as a worker ran it: what `Trainer.run(trace:)` returns and
/// `ptrain --trace` writes. A run's trace shows the schedule of docs/architecture.md as it
/// happened: which worker took which item, how long each took, the serial step between phases
/// (on the worker that completed the phase) and the gaps between them (waiting, hand-offs).
public struct TraceEvent: Sendable, Equatable {
    /// The worker (thread) that ran it.
    public var worker: Int
    /// The iteration (0-based, counted from the first iteration of the run, so a resumed run
    /// continues the numbering) whose phase held the item.
    public var iteration: Int
    /// The item's index among its phase's items; nil for the serial step.
    public var item: Int?
    /// What it did, e.g. "W1 rows 56..<112" (`Schedule.describe`), or "serial step".
    public var name: String
    /// "compute", "reduction" or (the serial step) "bookkeeping", as the run's phase times count
    /// it (`PhaseTimes`).
    public var category: String
    /// Seconds from the start of the training loop to the item's start.
    public var start: Double
    /// Seconds the item took.
    public var duration: Double
}

/// Records the items and serial steps of some iterations into storage allocated before the loop.
/// Each worker fills chunks of 64 records that it claims with one shared atomic increment, so
/// tracing adds a store to each traced item and a shared increment to every 64th. (A shared counter
/// bumped for every item makes the two workers of a 2-worker run pass its cache line back and
/// forth, and the trace would then measure its own cost: the workers' share of time inside items
/// drops by a few percent.)
final class ItemRecorder: @unchecked Sendable {
    struct Record {
        /// −1: a slot no item filled.
        var worker: Int32
        var phase: UInt32
        var item: Int32
        var start: Int64
        var end: Int64
    }

    /// The item number recorded for a phase's serial step.
    static let serialStep = -1
    /// Iterations (0-based, as the loop counts them) to record.
    let iterations: Range<Int>
    private static let chunk = 64
    private let records: UnsafeMutablePointer<Record>
    private let capacity: Int
    private let next = Atomic<Int>(0)
    /// Per worker, on a cache line of its own: the next slot of its chunk and the chunk's end.
    private let cursors: UnsafeMutablePointer<Int>
    private static let cursorStride = 64 / MemoryLayout<Int>.stride

    /// Room for `recordsPerIteration` records (the items and the serial steps of an iteration's
    /// phases) in each of `iterations`, run by up to `workers` workers (each may leave part of its
    /// last chunk empty).
    init(iterations: Range<Int>, recordsPerIteration: Int, workers: Int) {
        self.iterations = iterations
        capacity = iterations.count * recordsPerIteration + workers * Self.chunk
        records = .allocate(capacity: capacity)
        records.initialize(repeating: Record(worker: -1, phase: 0, item: 0, start: 0, end: 0), count: capacity)
        cursors = .allocate(capacity: workers * Self.cursorStride)
        cursors.initialize(repeating: 0, count: workers * Self.cursorStride)
    }

    deinit {
        records.deallocate()
        cursors.deallocate()
    }

    /// Called by the worker that ran the item (`serialStep`: the phase's serial step), for an
    /// iteration being recorded.
    func record(worker: Int, phase: UInt32, item: Int, start: MonotonicInstant, end: MonotonicInstant) {
        let cursor = cursors + worker * Self.cursorStride
        if cursor[0] == cursor[1] {
            let first = next.wrappingAdd(Self.chunk, ordering: .relaxed).oldValue
            precondition(first + Self.chunk <= capacity, "more records than the schedule's items and serial steps per iteration")
            cursor[0] = first
            cursor[1] = first + Self.chunk
        }
        records[cursor[0]] = Record(worker: Int32(worker), phase: phase, item: Int32(item), start: start.nanoseconds, end: end.nanoseconds)
        cursor[0] += 1
    }

    /// The records, in no particular order. Read only after the workers have joined.
    var recorded: [Record] {
        UnsafeBufferPointer(start: records, count: min(next.load(ordering: .relaxed), capacity)).filter { $0.worker >= 0 }
    }
}
