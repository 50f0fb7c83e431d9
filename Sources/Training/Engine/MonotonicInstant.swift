import Glibc

/// A reading of CLOCK_MONOTONIC in nanoseconds, for the training loop's phase times.
///
/// The loop reads the clock twice per work item (about 60 items per iteration of the default run).
/// `ContinuousClock.now` builds a `Duration` with 128-bit multiplications, and converting a
/// difference to seconds (`Duration.components`) divides 128-bit numbers, which showed up in a
/// `perf record` profile of a one-worker default run. This type keeps the one vDSO call and does
/// 64-bit arithmetic only.
struct MonotonicInstant {
    let nanoseconds: Int64

    static var now: MonotonicInstant {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return MonotonicInstant(nanoseconds: Int64(t.tv_sec) &* 1_000_000_000 &+ Int64(t.tv_nsec))
    }

    /// Seconds from `self` to `later`.
    func seconds(until later: MonotonicInstant) -> Double { Double(later.nanoseconds &- nanoseconds) * 1e-9 }

    /// Seconds from `self` to now.
    var elapsed: Double { seconds(until: .now) }
}
