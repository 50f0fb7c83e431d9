import Foundation

/// A projection of parallel efficiency from the measured one-worker phase costs (docs/scaling.md).
///
/// Per iteration with N workers on N cores and `nodes` NUMA nodes:
///   T(N) = C·⌈B/N⌉/B + R·⌈784/N⌉/784 + S(N) + X(N)
/// - C, R: the one-worker compute (row phase) and reduction (parameter phase) times: both split
///   by rows (of the batch, of W1), so they shrink as ⌈·/N⌉;
/// - S(N) = 2 barriers · N arrivals · t_line, t_line = 60 ns (one contended cache-line transfer
///   on a node), 150 ns when the barrier spans nodes: the centralized barrier's cost grows with N;
/// - X(N): with more than one node, each worker's parameter phase reads the whole batch's x and da1
///   (4·B·(784 + H) bytes), a fraction (nodes − 1)/nodes of it remote, at 10 GB/s per worker.
/// Efficiency E(N) = T(1) / (N·T(N)). Assumptions, not measurements: t_line, the remote bandwidth,
/// perfect per-core compute scaling (no shared-cache or memory-bandwidth limits).
struct ScalingModel {
    let points: [ScalingBenchmark.Point]
    let cores: Int

    func project(_ one: ScalingBenchmark.Point, workers n: Int, nodes: Int) -> Double {
        let b = Double(one.batch_size), h = Double(one.hidden)
        let c = one.compute_us, r = one.reduction_us
        let compute = c * (Double(one.batch_size).dividedCeil(n)) / b
        let reduction = r * (784.0.dividedCeil(n)) / 784
        let line = nodes > 1 ? 0.150 : 0.060
        let sync = 2 * Double(n) * line
        let remote = nodes > 1 ? 4 * b * (784 + h) * Double(nodes - 1) / Double(nodes) / 10e9 * 1e6 : 0
        let t1 = c + r
        return t1 / (Double(n) * (compute + reduction + sync + remote))
    }

    func report() -> String {
        var lines = ["projection (docs/scaling.md model; a projection, not a measurement):",
                     "scenario                                        N=1  measured/projected at N<=cores | projected N=8   16    64 | 2 nodes N=16  64 | 4 nodes N=64"]
        let scenarios = Array(NSOrderedSet(array: points.filter { !$0.scenario.hasPrefix("weak") }.map(\.scenario))) as! [String]
        for s in scenarios {
            guard let one = points.first(where: { $0.scenario == s && $0.workers == 1 }) else { continue }
            let checks = points.filter { $0.scenario == s && $0.workers > 1 && $0.workers <= cores }
                .map { String(format: "N=%d %.2f/%.2f", $0.workers, $0.efficiency, project(one, workers: $0.workers, nodes: 1)) }
                .joined(separator: " ")
            lines.append(String(format: "%-46@ %4.2f  %-30@ | %16.2f %5.2f %5.2f | %12.2f %5.2f | %12.2f",
                                String(s.prefix(46)) as NSString, 1.0, checks as NSString,
                                project(one, workers: 8, nodes: 1), project(one, workers: 16, nodes: 1), project(one, workers: 64, nodes: 1),
                                project(one, workers: 16, nodes: 2), project(one, workers: 64, nodes: 2), project(one, workers: 64, nodes: 4)))
        }
        return lines.joined(separator: "\n")
    }
}

extension Double {
    /// ⌈self / n⌉ for a whole-valued self.
    func dividedCeil(_ n: Int) -> Double { (self / Double(n)).rounded(.up) }
}
