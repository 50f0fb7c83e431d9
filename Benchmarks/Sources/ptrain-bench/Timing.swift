import Foundation

/// Wall-clock seconds of `body`.
func seconds(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    return (ContinuousClock.now - start).seconds
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// Median, minimum and maximum of repeated measurements.
struct Stats: Codable {
    var median: Double
    var min: Double
    var max: Double

    init(_ values: [Double]) {
        let s = values.sorted()
        median = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        min = s.first!
        max = s.last!
    }
}

/// Runs `body` (which does `work` units) `repeats` times for at least `minimum` seconds each and
/// returns the rates (units per second) of each repeat.
func rates(repeats: Int, minimum: Double = 0.05, work: Double, _ body: @escaping () -> Void) -> [Double] {
    let probe = RateProbe(work: work, minimum: minimum, body)
    return (0..<repeats).map { _ in probe.sample() }
}

/// A body (which does `work` units) timed one sample at a time: warmed up once and run often
/// enough per sample to last `minimum` seconds, so samples of different bodies can alternate.
struct RateProbe {
    let work: Double
    let body: () -> Void
    let calls: Int

    init(work: Double, minimum: Double = 0.05, _ body: @escaping () -> Void) {
        self.work = work
        self.body = body
        body()  // warm-up: caches, page faults, lazy initialisation
        var calls = 1
        while seconds({ for _ in 0..<calls { body() } }) < minimum { calls *= 2 }
        self.calls = calls
    }

    /// One sample: units per second.
    func sample() -> Double {
        let t = seconds { for _ in 0..<calls { body() } }
        return work * Double(calls) / t
    }
}

/// Runs `body(0)`, ..., `body(threads − 1)` on as many threads of their own, started together,
/// and returns when all have finished.
func concurrently(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<threads {
        group.enter()
        Thread { body(i); group.leave() }.start()
    }
    group.wait()
}

func fixed(_ value: Double, _ decimals: Int = 1) -> String { String(format: "%.\(decimals)f", value) }

/// Keeps a value alive so the optimizer cannot delete the work that produced it.
@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }
