import Foundation

/// A cgroup CPU bandwidth limit: the process may use `cpus` CPUs' worth of time per period, however
/// many CPUs its affinity mask allows (Docker's `--cpus`, Kubernetes' `limits.cpu`).
///
/// The affinity mask (taskset, cgroup cpusets) says where threads may run; this quota says how much
/// they may run. A container limited to 2 CPUs on a 64-CPU host sees all 64 in its mask, and 8
/// workers pinned to 8 of them would run in bursts of a quarter period and then all wait, throttled,
/// for the rest. `Placement` therefore uses only ⌈cpus⌉ of the allowed CPUs, so the run behaves as
/// on a machine of that size (the engine is built and measured for more workers than CPUs).
///
/// Read from cgroup v2 (`cpu.max`: "max 100000" or "150000 100000", quota and period in µs) or v1
/// (`cpu.cfs_quota_us`, −1 for none, and `cpu.cfs_period_us`), at the process's cgroup and every
/// ancestor up to the mount: the tightest limit counts, as the kernel enforces each level.
public struct CPUQuota: Equatable, Sendable {
    /// quota / period, e.g. 1.5.
    public var cpus: Double
    /// The file that set the limit and its contents, for `ptrain topology`.
    public var source: String

    /// A quota of `cpus` CPUs read from `source`.
    public init(cpus: Double, source: String) {
        precondition(cpus > 0 && cpus.isFinite)
        self.cpus = cpus
        self.source = source
    }

    /// The CPUs a placement uses: ⌈cpus⌉, at least 1 (a quota of 1.5 CPUs can keep 2 busy part of
    /// the time) and at most 2^20.
    public var wholeCPUs: Int { max(1, Int(min(cpus, Double(1 << 20)).rounded(.up))) }

    /// The tightest limit on this process, or nil when there is none or the cgroup files cannot be read
    /// (not Linux, no cgroup file system mounted). `procCgroup` and `root` are parameters for tests.
    public static func read(procCgroup: String = "/proc/self/cgroup", root: String = "/sys/fs/cgroup") -> CPUQuota? {
        guard let text = try? String(contentsOfFile: procCgroup, encoding: .utf8) else { return nil }
        var found: [CPUQuota] = []
        // Each line is "hierarchy-id:controllers:path": "0::path" for v2, e.g. "4:cpu,cpuacct:path" for v1.
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {
                // The v2 hierarchy: mounted at the root (unified) or beside the v1 controllers (hybrid).
                for mount in [root, root + "/unified"] where exists(mount + "/cgroup.controllers") {
                    found += limits(mount: mount, path: path) { dir in
                        let file = dir + "/cpu.max"
                        guard let max = contents(file), let cpus = parseV2(max) else { return nil }
                        return CPUQuota(cpus: cpus, source: "\(file): \(max)")
                    }
                }
            } else if fields[1].split(separator: ",").contains("cpu") {
                let mount = root + "/" + fields[1]
                let mounts = [mount, root + "/cpu", root + "/cpu,cpuacct", root + "/cpuacct,cpu"]
                guard let dir = mounts.first(where: { exists($0 + "/cpu.cfs_quota_us") }) else { continue }
                found += limits(mount: dir, path: path) { dir in
                    let quotaFile = dir + "/cpu.cfs_quota_us"
                    guard let quota = contents(quotaFile), let period = contents(dir + "/cpu.cfs_period_us"),
                          let cpus = parseV1(quota: quota, period: period) else { return nil }
                    return CPUQuota(cpus: cpus, source: "\(quotaFile): \(quota), cpu.cfs_period_us: \(period)")
                }
            }
        }
        return found.min { $0.cpus < $1.cpus }
    }

    /// `cpu.max` ("max 100000" or "150000 100000") as CPUs; nil for "max" or text it does not understand.
    public static func parseV2(_ text: String) -> Double? {
        let parts = text.split(whereSeparator: \.isWhitespace)
        guard parts.count == 2, let quota = Double(parts[0]), let period = Double(parts[1]) else { return nil }
        return ratio(quota, period)
    }

    /// `cpu.cfs_quota_us` and `cpu.cfs_period_us` as CPUs; nil for a quota of −1 (none).
    public static func parseV1(quota: String, period: String) -> Double? {
        guard let q = Double(quota.trimmingCharacters(in: .whitespacesAndNewlines)),
              let p = Double(period.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return ratio(q, p)
    }

    /// quota / period for two positive finite numbers whose ratio is finite; nil otherwise (a
    /// file that says "inf" or "nan" is not a limit this code understands).
    private static func ratio(_ quota: Double, _ period: Double) -> Double? {
        guard quota > 0, period > 0, quota.isFinite, period.isFinite, (quota / period).isFinite else { return nil }
        return quota / period
    }

    /// The limits found at mount/path and each ancestor up to the mount. Without a cgroup namespace a
    /// container's /proc/self/cgroup names the host's path, which its mount does not hold: those
    /// levels are skipped, and the mount itself (the container's own cgroup) is still read.
    private static func limits(mount: String, path: String, at read: (String) -> CPUQuota?) -> [CPUQuota] {
        var components = path.split(separator: "/").map(String.init)
        var result: [CPUQuota] = []
        while true {
            let dir = ([mount] + components).joined(separator: "/")
            if let limit = read(dir) { result.append(limit) }
            guard !components.isEmpty else { return result }
            components.removeLast()
        }
    }

    private static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    private static func contents(_ file: String) -> String? {
        (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
