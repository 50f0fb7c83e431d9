import CSupport
import Synchronization

/// How long a cache line takes to go from one CPU to another and back.
///
/// Two threads, pinned to the two CPUs, take turns storing to one word, each spinning until it
/// sees the other's store; one round trip is two such hand-overs. Every work item that reads what
/// a worker on another CPU wrote pays this latency per line it waits for, so it bounds what
/// 2 workers gain over 1. On a shared virtual machine it moves with where the host places the
/// virtual CPUs: tens of nanoseconds while two vCPUs share a level-3 cache, several hundred while
/// they do not, and 2 workers gain visibly less in the second state (`ptrain-bench scaling`
/// records the round trip before each round beside the speedup reached in it).
/// `ptrain topology --probe` and `ptrain-bench scaling` print it.
public enum CoreRoundTrip {
    /// The median over `repeats` of the mean round trip of `trips` consecutive trips between
    /// CPUs `a` and `b`, in nanoseconds. One pair of threads runs all repeats (starting threads
    /// per repeat read more than twice as long on that machine). Nil when a thread could not be
    /// pinned, or when the measurement had not finished after `limit`: a CPU busy with another
    /// thread makes each trip wait for the scheduler, and the result would not be a cache latency.
    ///
    /// Defaults: 20,000 trips take 1-11 ms, long enough to average out a timer read and short
    /// enough that 3 repeats cost little; the limit is about 15 times the slowest time seen.
    public static func nanoseconds(between a: Int, and b: Int, trips: Int = 20_000, repeats: Int = 3,
                                   limit: Duration = .milliseconds(500)) -> Double? {
        precondition(a != b && a >= 0 && b >= 0 && trips > 0 && repeats > 0)
        let placement = Placement(topology: Topology(nodes: [.init(id: 0, cpus: [a, b])]), workers: 2, policy: .compact)
        let run = PingPong(repeats: repeats)
        let began = ContinuousClock.now, deadline = began + limit
        let warnings = WorkerPool.run(placement: placement) { context in
            let side = context.index
            for repeat_ in 0..<repeats {
                let start = ContinuousClock.now
                for trip in 0..<trips {
                    // Side 0 waits for even values, side 1 for odd ones; each answers with the next.
                    let awaited = 2 * (repeat_ * trips + trip) + side
                    var spins = 0
                    while run.word.load(ordering: .acquiring) != awaited {
                        if run.abandoned.load(ordering: .relaxed) { return }
                        spins += 1
                        if spins & 0xFFF == 0 && ContinuousClock.now > deadline {
                            run.abandoned.store(true, ordering: .relaxed)
                            return
                        }
                        csupport_cpu_relax()
                    }
                    run.word.store(awaited + 1, ordering: .releasing)
                }
                if side == 0 {
                    let elapsed = ContinuousClock.now - start
                    run.nanoseconds[repeat_] = Double(elapsed.components.seconds) * 1e9
                        + Double(elapsed.components.attoseconds) * 1e-9
                }
            }
        }
        guard warnings.isEmpty, !run.abandoned.load(ordering: .relaxed), ContinuousClock.now - began <= limit else { return nil }
        let sorted = run.nanoseconds.map { $0 / Double(trips) }.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// The state the two threads of `CoreRoundTrip` share. `nanoseconds` is written by side 0 only
/// and read after both threads are joined.
private final class PingPong: @unchecked Sendable {
    let word = Atomic<Int>(0)
    let abandoned = Atomic<Bool>(false)
    var nanoseconds: [Double]
    init(repeats: Int) { nanoseconds = [Double](repeating: 0, count: repeats) }
}
