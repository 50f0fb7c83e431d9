/// How workers are placed on CPUs.
public enum PlacementPolicy: String, CaseIterable, Sendable {
    /// Round-robin over nodes (worker w on node w mod nodes), so memory bandwidth of every node is
    /// used from the first workers on. The default: data-parallel training is bandwidth-hungry.
    case spread
    /// Fill node 0's CPUs, then node 1's, ...: keeps a small run on one node's cache and memory.
    case compact
    /// No pinning; the OS scheduler places threads, memory is first-touch wherever they run.
    case none
}

/// Where each worker runs: a CPU to pin to (nil for `none`) and the node whose memory it uses.
public struct Placement: Equatable, Sendable {
    /// Where one worker runs.
    public struct Slot: Equatable, Sendable {
        /// The worker's index.
        public var worker: Int
        /// The CPU it is pinned to; nil when not pinned (`--placement none`, a simulated topology).
        public var cpu: Int?
        /// The NUMA node whose memory it reads.
        public var node: Int
    }

    /// The policy that made this plan.
    public var policy: PlacementPolicy
    /// One slot per worker, in worker order.
    public var slots: [Slot]
    /// The length of the CPU order that the slots cycle through: the topology's usable CPU count.
    public var cycle: Int
    /// The CPUs that really run the threads: `cycle`, or for a simulated topology the host's.
    public var hostCPUs: Int
    /// Whether the workers are pinned to their slots' CPUs (not for `none`, nor on a simulated topology).
    public var pins: Bool
    /// Whether memory is placed on the slots' nodes (not on a simulated topology).
    public var placesMemory: Bool

    /// Plans `workers` workers on `topology`. With more workers than CPUs, the CPU order is
    /// reused from the start (two workers share a CPU), in the same policy order. Under a cgroup CPU
    /// quota of q CPUs, fewer than allowed, the order is cut to its first ⌈q⌉ CPUs
    /// (`Topology.usableCPUCount`): the process gets no more CPU time than that anyway, and its
    /// workers then share those CPUs as on a machine of that size instead of all running at once
    /// in bursts between throttled periods (`CPUQuota`).
    public init(topology: Topology, workers: Int, policy: PlacementPolicy) {
        precondition(workers > 0 && !topology.nodes.isEmpty)
        self.policy = policy
        var order: [(cpu: Int, node: Int)] = []
        switch policy {
        case .compact, .none:
            for node in topology.nodes { for cpu in node.cpus { order.append((cpu, node.id)) } }
        case .spread:
            let longest = topology.nodes.map(\.cpus.count).max()!
            for i in 0..<longest {
                for node in topology.nodes where i < node.cpus.count { order.append((node.cpus[i], node.id)) }
            }
        }
        order = Array(order.prefix(topology.usableCPUCount))
        cycle = order.count
        hostCPUs = topology.simulatedOn ?? order.count
        pins = policy != .none && topology.simulatedOn == nil
        placesMemory = topology.simulatedOn == nil
        slots = (0..<workers).map { w in
            let spot = order[w % order.count]
            return Slot(worker: w, cpu: policy == .none ? nil : spot.cpu, node: policy == .none ? topology.nodes[0].id : spot.node)
        }
    }

    /// The worker that leads the CPU of `worker`: the first worker placed on that CPU, worker w mod
    /// CPUs (itself while workers <= CPUs). The engine plans work for the leads and lets every
    /// worker on a CPU take its lead's items, so those items' data stays in that CPU's caches
    /// whichever of its threads runs. (For `none`, which pins nothing, the same grouping by number.)
    public func lead(of worker: Int) -> Int { worker % cycle }

    /// How many workers lead a CPU (workers 0 ..< leadCount): min(workers, `cycle`), the workers
    /// the engine plans its work for.
    public var leadCount: Int { min(slots.count, cycle) }

    /// Whether more threads than CPUs really run, so that waiting threads should soon leave
    /// their CPU to others (`WorkQueue`).
    public var oversubscribed: Bool { slots.count > hostCPUs }

    /// Nodes in use, ascending.
    public var nodes: [Int] { Array(Set(slots.map(\.node))).sorted() }
}
