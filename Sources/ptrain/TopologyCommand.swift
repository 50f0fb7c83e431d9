import ArgumentParser
import Kernels
import Parallel
import Training

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Show the NUMA nodes, their CPUs, any cgroup CPU quota, the kernel variant and the placement plan.")

    @Option(help: "Workers to plan for.")
    var workers = 1

    @Option(help: "Placement policy: spread, compact or none.")
    var placement: PlacementPolicy = .spread

    func validate() throws {
        guard (1...TrainingConfiguration.maximumWorkers).contains(workers) else {
            throw ValidationError("--workers must be between 1 and \(TrainingConfiguration.maximumWorkers), got \(workers).")
        }
    }

    func run() throws {
        let kernels = try KernelSet.best()
        print(describe(topology: Topology.discover(), workers: workers, policy: placement, kernels: kernels.variant))
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
    let plan = Placement(topology: topology, workers: workers, policy: policy)
    let note = workers > plan.cycle ? " (more workers than CPUs: CPUs are shared)" : ""
    lines.append("placement \(policy.rawValue) for \(workers) worker(s)\(note):")
    for slot in plan.slots {
        lines.append("  worker \(slot.worker): \(slot.cpu.map { "cpu \($0)" } ?? "unpinned"), node \(slot.node)")
    }
    return lines.joined(separator: "\n")
}
