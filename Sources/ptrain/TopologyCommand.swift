import ArgumentParser
import Kernels
import Parallel
import Training

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Show the NUMA nodes, their CPUs, any cgroup CPU quota, the kernel variant and the placement plan; with --probe, the round trip between the planned CPUs.",
        discussion: """
        PTRAIN_TOPOLOGY=NODESxCPUS (e.g. 4x16) makes train, verify and topology plan placement and \
        schedules for a simulated machine of that many nodes and CPUs: a testing aid for schedules \
        this machine is too small to plan. Threads are not pinned; the result is the same bits.
        """)

    @Option(help: "Workers to plan for.")
    var workers = 1

    @Option(help: "Placement policy: spread, compact or none.")
    var placement: PlacementPolicy = .spread

    @Flag(help: "Also measure the cache-line round trip from the first worker's CPU to each other CPU of the plan (up to \(Self.probedCPUs); a few ms to about 30 ms each). It bounds what 2 workers gain over 1.")
    var probe = false

    /// The most CPUs `--probe` measures, so that a large machine answers within a few seconds.
    static let probedCPUs = 32

    func validate() throws {
        guard (1...TrainingConfiguration.maximumWorkers).contains(workers) else {
            throw ValidationError("--workers must be between 1 and \(TrainingConfiguration.maximumWorkers), got \(workers).")
        }
    }

    func run() throws {
        let processes = try Processes.join()
        let kernels = try KernelSet.best()
        let topology = processes.topology
        var text = describe(topology: topology, workers: workers, policy: placement, kernels: kernels.variant)
        if probe { text += "\n" + probeRoundTrips(Placement(topology: topology, workers: workers, policy: placement)) }
        // Under mpirun each rank plans its own share; rank 0 prints every rank's plan in rank order.
        if let label = processes.label { text = label + ":\n" + text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") }
        if let all = processes.gather(text) { print(all.joined(separator: "\n")) }
        processes.finish()
    }

    /// `--probe`: the round trip from the plan's first CPU to each other CPU it uses, in plan order.
    func probeRoundTrips(_ plan: Placement) -> String {
        guard plan.policy != .none else { return "round trips: not measured (--placement none pins no worker to a CPU)" }
        guard plan.pins else { return "round trips: not measured (the topology is simulated: unset PTRAIN_TOPOLOGY)" }
        var cpus: [Int] = []
        for cpu in plan.slots.compactMap(\.cpu) where !cpus.contains(cpu) { cpus.append(cpu) }
        guard cpus.count > 1 else {
            return plan.slots.count == 1 && plan.cycle > 1 ? "round trips: not measured (one worker: pass --workers 2 or more)"
                                                            : "round trips: not measured (the plan's workers share one CPU)"
        }
        var lines = ["cache-line round trip from cpu \(cpus[0]) (median of 3 x 20000 trips; longer means less gain from more workers):"]
        for cpu in cpus.dropFirst().prefix(Self.probedCPUs - 1) {
            let trip = CoreRoundTrip.nanoseconds(between: cpus[0], and: cpu)
            lines.append("  cpu \(cpu): " + (trip.map { "\(Int($0.rounded())) ns" } ?? "not measured (pinning refused, or the CPU was busy)"))
        }
        if cpus.count > Self.probedCPUs { lines.append("  (the other \(cpus.count - Self.probedCPUs) CPUs not measured)") }
        return lines.joined(separator: "\n")
    }
}

/// The text of `ptrain topology`.
func describe(topology: Topology, workers: Int, policy: PlacementPolicy, kernels: KernelVariant) -> String {
    var lines = ["topology (\(topology.source)): \(topology.nodes.count) node(s), \(topology.cpuCount) allowed CPU(s)"]
    for node in topology.nodes {
        lines.append("  node \(node.id): cpus \(node.cpus.map(String.init).joined(separator: ","))")
    }
    if let quota = topology.cpuQuota {
        let use = topology.usableCPUCount < topology.cpuCount
            ? "placement uses \(topology.usableCPUCount) of the \(topology.cpuCount) allowed CPU(s)"
            : "placement uses all \(topology.cpuCount) allowed CPU(s)"
        lines.append("cgroup CPU quota: \(format(quota.cpus, 2)) CPU(s) (\(quota.source)): \(use)")
    }
    lines.append("kernels: \(kernels.summary)")
    let caches = CacheSizes.current
    lines.append("caches per core: L1d \(caches.l1Data >> 10) KiB, L2 \(caches.l2 >> 10) KiB (GEMM blocking; no bit depends on it)")
    let plan = Placement(topology: topology, workers: workers, policy: policy)
    let note = workers > plan.cycle ? " (more workers than CPUs: CPUs are shared)" : ""
    lines.append("placement \(policy.rawValue) for \(workers) worker(s)\(note):")
    for slot in plan.slots {
        lines.append("  worker \(slot.worker): \(slot.cpu.map { "cpu \($0)" } ?? "unpinned"), node \(slot.node)")
    }
    return lines.joined(separator: "\n")
}
