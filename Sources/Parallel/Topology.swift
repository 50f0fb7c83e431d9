import CNuma
import CSupport
import Foundation

/// The CPUs this process may use, grouped by NUMA node.
///
/// Discovery order (`discover()`): libnuma when `numa_available()` says NUMA works; else
/// /sys/devices/system/node/node*/cpulist; else one node holding every allowed CPU (containers
/// often hide both). Only CPUs in the process's affinity mask (taskset, cgroup cpusets) are kept,
/// and a cgroup CPU quota is read beside them (`CPUQuota`; `usableCPUCount`).
/// Tests inject layouts through `init(nodes:source:cpuQuota:)`; `current()` also honours
/// `PTRAIN_TOPOLOGY`, a simulated layout for testing (`simulated(_:hostCPUs:)`).
public struct Topology: Equatable, Sendable {
    /// One NUMA node and the CPUs of it this process may use.
    public struct Node: Equatable, Sendable {
        /// The node's number, as libnuma and sysfs number it.
        public var id: Int
        /// Allowed CPUs of this node, ascending.
        public var cpus: [Int]
        /// Node `id` with `cpus` (sorted).
        public init(id: Int, cpus: [Int]) {
            self.id = id
            self.cpus = cpus
        }
    }

    /// Nodes with at least one allowed CPU, by id.
    public var nodes: [Node]
    /// How the layout was found: "libnuma", "sysfs", "single node (no NUMA information)" or "injected".
    public var source: String
    /// The cgroup CPU bandwidth limit, if any.
    public var cpuQuota: CPUQuota?
    /// For a simulated layout, the CPUs that really run the threads; nil for a real one.
    /// `Placement` plans a simulated layout's schedule as on a real one, but pins no thread and
    /// places no memory on a node, and its threads wait as threads that share CPUs do.
    public var simulatedOn: Int?

    /// A given layout (tests, simulations): `source` says where it came from in `ptrain topology`.
    public init(nodes: [Node], source: String = "injected", cpuQuota: CPUQuota? = nil, simulatedOn: Int? = nil) {
        self.nodes = nodes.filter { !$0.cpus.isEmpty }.sorted { $0.id < $1.id }
        self.source = source
        self.cpuQuota = cpuQuota
        self.simulatedOn = simulatedOn
    }

    /// The allowed CPUs.
    public var cpuCount: Int { nodes.reduce(0) { $0 + $1.cpus.count } }

    /// The CPUs a placement uses: the allowed ones, or ⌈quota⌉ of them under a smaller cgroup CPU quota.
    public var usableCPUCount: Int { min(cpuCount, cpuQuota?.wholeCPUs ?? cpuCount) }

    /// The CPUs this process may run on (sched_getaffinity), or nil when the OS does not say.
    public static func allowedCPUs() -> [Int]? {
        var buffer = [Int32](repeating: 0, count: 4096)
        let n = csupport_allowed_cpus(&buffer, Int32(buffer.count))
        guard n > 0 else { return nil }
        return buffer[0..<Int(n)].map(Int.init)
    }

    /// The layout the CLI plans for: the one `PTRAIN_TOPOLOGY` simulates when it is set, else the
    /// machine's own (`discover()`).
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Topology {
        let real = discover()
        guard let text = environment["PTRAIN_TOPOLOGY"], !text.isEmpty else { return real }
        return try simulated(text, hostCPUs: real.usableCPUCount)
    }

    /// The largest simulated layout: enough CPUs to give each of `--workers`' 1024 its own.
    public static let simulatedLimits = (nodes: 64, cpus: 4096)

    /// A simulated layout for testing schedules that this machine is too small to plan, from
    /// "NxC": N nodes of C CPUs each, numbered node-major (node n holds CPUs n·C ..< (n+1)·C), with
    /// no CPU quota. Its threads really run on `hostCPUs` CPUs.
    public static func simulated(_ text: String, hostCPUs: Int) throws -> Topology {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let nodes = Int(parts[0]), let cpus = Int(parts[1]), nodes >= 1, cpus >= 1,
              nodes <= simulatedLimits.nodes, nodes * cpus <= simulatedLimits.cpus else {
            throw TopologyError("PTRAIN_TOPOLOGY=\(text): expected NODESxCPUS, e.g. 4x16 for 4 nodes of 16 CPUs, with at most \(simulatedLimits.nodes) nodes and \(simulatedLimits.cpus) CPUs in all; unset it to use this machine's layout")
        }
        return Topology(nodes: (0..<nodes).map { Node(id: $0, cpus: Array($0 * cpus..<($0 + 1) * cpus)) },
                        source: "simulated by PTRAIN_TOPOLOGY=\(text), threads unpinned on \(hostCPUs) CPU(s)",
                        simulatedOn: max(hostCPUs, 1))
    }

    /// This machine's layout: libnuma where it works, else sysfs, else one node of every allowed CPU; `PTRAIN_TOPOLOGY=NxC` simulates N nodes of C CPUs.
    public static func discover() -> Topology {
        let allowed = allowedCPUs() ?? Array(0..<ProcessInfo.processInfo.activeProcessorCount)
        var topology = discoverNodes(allowed: allowed)
        topology.cpuQuota = CPUQuota.read()
        return topology
    }

    private static func discoverNodes(allowed: [Int]) -> Topology {
        if numa_available() >= 0 {
            var byNode: [Int: [Int]] = [:]
            for cpu in allowed {
                let node = Int(numa_node_of_cpu(Int32(cpu)))
                byNode[max(node, 0), default: []].append(cpu)
            }
            return Topology(nodes: byNode.map { Node(id: $0.key, cpus: $0.value) }, source: "libnuma")
        }
        if let nodes = sysfsNodes(allowed: Set(allowed)), !nodes.isEmpty {
            return Topology(nodes: nodes, source: "sysfs")
        }
        return Topology(nodes: [Node(id: 0, cpus: allowed)], source: "single node (no NUMA information)")
    }

    static func sysfsNodes(allowed: Set<Int>, root: String = "/sys/devices/system/node") -> [Node]? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return nil }
        var nodes: [Node] = []
        for entry in entries where entry.hasPrefix("node") {
            guard let id = Int(entry.dropFirst(4)),
                  let list = try? String(contentsOfFile: "\(root)/\(entry)/cpulist", encoding: .utf8),
                  let cpus = parseCPUList(list) else { continue }
            nodes.append(Node(id: id, cpus: cpus.filter(allowed.contains)))
        }
        return nodes
    }

    /// Parses the kernel's cpulist format, e.g. "0-3,8,10-11".
    public static func parseCPUList(_ text: String) -> [Int]? {
        var cpus: [Int] = []
        for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = part.split(separator: "-")
            if bounds.count == 1, let v = Int(bounds[0]) {
                cpus.append(v)
            } else if bounds.count == 2, let a = Int(bounds[0]), let b = Int(bounds[1]), a <= b {
                cpus.append(contentsOf: a...b)
            } else {
                return nil
            }
        }
        return cpus.sorted()
    }
}

/// A malformed `PTRAIN_TOPOLOGY`.
public struct TopologyError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Topology {
    /// The CPU the calling thread runs on now, or nil where the OS does not say.
    public static func currentCPU() -> Int? {
        let cpu = csupport_current_cpu()
        return cpu >= 0 ? Int(cpu) : nil
    }
}

extension Topology {
    /// The CPUs left to process `index` of `count` processes that were given the same CPUs (ranks
    /// of one MPI job on one machine, started with `--bind-to none`): the allowed CPUs in node
    /// order cut into `count` consecutive shares of about equal size, so the processes' threads
    /// never share a CPU and a share stays within a node where it fits. With more processes than
    /// CPUs each gets one CPU, and processes share CPUs evenly. A CPU quota is divided among them.
    public func share(_ index: Int, of count: Int) -> Topology {
        precondition(count >= 1 && index >= 0 && index < count)
        guard count > 1 else { return self }
        let order = nodes.flatMap { node in node.cpus.map { (cpu: $0, node: node.id) } }
        let n = order.count
        let mine = n >= count ? Array(order[n * index / count..<n * (index + 1) / count]) : [order[index * n / count]]
        let byNode = Dictionary(grouping: mine, by: \.node)
        var shared = Topology(nodes: byNode.map { Node(id: $0.key, cpus: $0.value.map(\.cpu).sorted()) },
                              source: "\(source), share \(index + 1) of \(count)",
                              cpuQuota: cpuQuota.map { CPUQuota(cpus: $0.cpus / Double(count), source: $0.source) },
                              simulatedOn: simulatedOn.map { max(1, $0 / count) })
        if shared.nodes.isEmpty { shared.nodes = [Node(id: nodes[0].id, cpus: [order[0].cpu])] }
        return shared
    }
}
