import Foundation
import Parallel
import XCTest

final class ParallelTests: XCTestCase {
    let twoSocket = Topology(nodes: [.init(id: 0, cpus: [0, 1, 2, 3]), .init(id: 1, cpus: [4, 5, 6, 7])])
    let fourNode = Topology(nodes: [.init(id: 0, cpus: [0, 1]), .init(id: 1, cpus: [2, 3]),
                                    .init(id: 2, cpus: [4, 5]), .init(id: 3, cpus: [6, 7])])

    func cpus(_ p: Placement) -> [Int?] { p.slots.map(\.cpu) }
    func nodes(_ p: Placement) -> [Int] { p.slots.map(\.node) }

    /// Ranks given the same CPUs split them without overlap, node by node, and share evenly when
    /// they outnumber the CPUs (`Topology.share`, the MPI build's placement with --bind-to none).
    func testRanksShareTheCPUsWithoutOverlap() {
        let machine = Topology(nodes: [.init(id: 0, cpus: [0, 1, 2, 3]), .init(id: 1, cpus: [4, 5, 6, 7])],
                               cpuQuota: CPUQuota(cpus: 6, source: "test"))
        XCTAssertEqual(machine.share(0, of: 1), machine)
        let halves = (0..<2).map { machine.share($0, of: 2) }
        XCTAssertEqual(halves.map { $0.nodes.map(\.id) }, [[0], [1]], "two ranks: one node each")
        XCTAssertEqual(halves.map { $0.cpuQuota?.cpus }, [3, 3])
        let thirds = (0..<3).map { machine.share($0, of: 3) }
        XCTAssertEqual(thirds.flatMap { $0.nodes.flatMap(\.cpus) }, Array(0..<8), "every CPU once, in order")
        XCTAssertEqual(thirds.map(\.cpuCount), [2, 3, 3])
        XCTAssertEqual(thirds[1].nodes.map(\.id), [0, 1], "a share may straddle two nodes")
        let many = (0..<16).map { machine.share($0, of: 16) }
        XCTAssertEqual(many.map { $0.nodes.flatMap(\.cpus) }, (0..<16).map { [$0 / 2] }, "two ranks per CPU")
    }

    func testSpreadAlternatesSockets() {
        let p = Placement(topology: twoSocket, workers: 4, policy: .spread)
        XCTAssertEqual(cpus(p), [0, 4, 1, 5])
        XCTAssertEqual(nodes(p), [0, 1, 0, 1])
        XCTAssertEqual(p.nodes, [0, 1])
    }

    func testCompactFillsOneSocketFirst() {
        let p = Placement(topology: twoSocket, workers: 5, policy: .compact)
        XCTAssertEqual(cpus(p), [0, 1, 2, 3, 4])
        XCTAssertEqual(nodes(p), [0, 0, 0, 0, 1])
    }

    func testFourNodesSpreadAndOversubscribe() {
        let p = Placement(topology: fourNode, workers: 10, policy: .spread)
        XCTAssertEqual(cpus(p), [0, 2, 4, 6, 1, 3, 5, 7, 0, 2])
        XCTAssertEqual(nodes(p), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    }

    /// The engine plans home items for min(workers, CPUs) workers and gives every worker its
    /// CPU's lead's: the lead must be one of those and sit on the worker's CPU, for every policy
    /// and worker count.
    func testEachWorkersLeadIsAPlannedWorkerOnItsCPU() {
        let quota = Topology(nodes: fourNode.nodes, cpuQuota: CPUQuota(cpus: 2.5, source: "test"))
        for topology in [twoSocket, fourNode, Topology(nodes: [.init(id: 0, cpus: [3, 5])]), quota] {
            for policy in PlacementPolicy.allCases {
                for workers in [1, 2, 3, 7, 8, 9, 20] {
                    let p = Placement(topology: topology, workers: workers, policy: policy)
                    let cpus = topology.usableCPUCount
                    XCTAssertEqual(p.leadCount, min(workers, cpus))
                    for w in 0..<workers {
                        let lead = p.lead(of: w)
                        XCTAssertLessThan(lead, min(workers, cpus), "\(policy), \(workers) workers, worker \(w)")
                        XCTAssertEqual(p.slots[lead].cpu, p.slots[w].cpu, "\(policy), \(workers) workers, worker \(w)")
                        if workers <= cpus { XCTAssertEqual(lead, w) }
                    }
                }
            }
        }
    }

    func testNoneDoesNotPin() {
        let p = Placement(topology: fourNode, workers: 3, policy: .none)
        XCTAssertEqual(cpus(p), [nil, nil, nil])
        XCTAssertEqual(p.nodes, [0])
    }

    func testUnevenNodesAndEmptyNodesAreHandled() {
        let t = Topology(nodes: [.init(id: 1, cpus: [8, 9, 10]), .init(id: 0, cpus: [1]), .init(id: 2, cpus: [])])
        XCTAssertEqual(t.nodes.map(\.id), [0, 1], "empty nodes are dropped, nodes sorted")
        XCTAssertEqual(cpus(Placement(topology: t, workers: 4, policy: .spread)), [1, 8, 9, 10])
    }

    /// A cgroup CPU quota of 2.5 CPUs on 8 allowed CPUs: the plan uses 3 of them, in the policy's
    /// order, as on a 3-CPU machine; a quota above the CPU count changes nothing.
    func testPlacementUnderACPUQuotaUsesItsWholeCPUs() {
        let limited = Topology(nodes: twoSocket.nodes, cpuQuota: CPUQuota(cpus: 2.5, source: "test"))
        XCTAssertEqual(limited.cpuCount, 8)
        XCTAssertEqual(limited.usableCPUCount, 3)
        let spread = Placement(topology: limited, workers: 5, policy: .spread)
        XCTAssertEqual(cpus(spread), [0, 4, 1, 0, 4])
        XCTAssertEqual(nodes(spread), [0, 1, 0, 0, 1])
        XCTAssertEqual(spread.cycle, 3)
        XCTAssertEqual(spread.leadCount, 3)
        XCTAssertEqual(cpus(Placement(topology: limited, workers: 4, policy: .compact)), [0, 1, 2, 0])
        let generous = Topology(nodes: twoSocket.nodes, cpuQuota: CPUQuota(cpus: 16, source: "test"))
        XCTAssertEqual(Placement(topology: generous, workers: 8, policy: .spread), Placement(topology: twoSocket, workers: 8, policy: .spread))
        XCTAssertEqual(Topology(nodes: twoSocket.nodes, cpuQuota: CPUQuota(cpus: 0.2, source: "test")).usableCPUCount, 1)
    }

    func testCPUQuotaFileFormats() {
        XCTAssertEqual(CPUQuota.parseV2("150000 100000\n"), 1.5)
        XCTAssertNil(CPUQuota.parseV2("max 100000"))
        XCTAssertNil(CPUQuota.parseV2("150000"))
        XCTAssertNil(CPUQuota.parseV2("inf 100000"))
        XCTAssertNil(CPUQuota.parseV2("nan 100000"))
        XCTAssertNil(CPUQuota.parseV2("100000 0"))
        XCTAssertEqual(CPUQuota(cpus: 1e300, source: "test").wholeCPUs, 1 << 20, "an absurd quota does not trap")
        XCTAssertEqual(CPUQuota.parseV1(quota: "50000\n", period: "100000\n"), 0.5)
        XCTAssertNil(CPUQuota.parseV1(quota: "-1", period: "100000"))
        XCTAssertNil(CPUQuota.parseV1(quota: "x", period: "100000"))
    }

    /// Fake cgroup file systems: the tightest level along the path counts, for v2 and v1 (hybrid)
    /// layouts, in a container that sees its own cgroup at the mount but the host's path in
    /// /proc/self/cgroup, and not at all where nothing is limited or nothing can be read.
    func testCPUQuotaIsReadFromTheTightestCgroupLevel() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ptrain-cgroup-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func write(_ files: [String: String], proc: String) throws -> CPUQuota? {
            try? FileManager.default.removeItem(atPath: root)
            for (path, text) in files {
                let file = root + "/fs/" + path
                try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try text.write(toFile: file, atomically: false, encoding: .utf8)
            }
            try proc.write(toFile: root + "/cgroup", atomically: false, encoding: .utf8)
            return CPUQuota.read(procCgroup: root + "/cgroup", root: root + "/fs")
        }
        let v2 = try write(["cgroup.controllers": "cpu", "cpu.max": "max 100000", "a/cpu.max": "200000 100000",
                            "a/b/cpu.max": "150000 100000"], proc: "0::/a/b\n")
        XCTAssertEqual(v2?.cpus, 1.5)
        XCTAssert(v2?.source.hasSuffix("/a/b/cpu.max: 150000 100000") == true, "\(String(describing: v2))")
        XCTAssertEqual(try write(["cgroup.controllers": "cpu", "a/cpu.max": "100000 100000", "a/b/cpu.max": "max 100000"],
                                 proc: "0::/a/b\n")?.cpus, 1, "a parent's limit binds its children")
        let v1 = try write(["unified/cgroup.controllers": "", "cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000",
                            "cpu,cpuacct/docker/x/cpu.cfs_quota_us": "50000", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000"],
                           proc: "5:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/docker/x\n")
        XCTAssertEqual(v1?.cpus, 0.5)
        XCTAssertEqual(v1?.wholeCPUs, 1)
        XCTAssertEqual(try write(["cgroup.controllers": "cpu", "cpu.max": "300000 100000"], proc: "0::/kubepods/pod1/c1\n")?.cpus, 3,
                       "without a cgroup namespace the mount is the container's own cgroup")
        XCTAssertNil(try write(["cgroup.controllers": "cpu", "cpu.max": "max 100000"], proc: "0::/\n"))
        XCTAssertNil(CPUQuota.read(procCgroup: root + "/missing", root: root + "/fs"))
    }

    func testCPUListParsing() {
        XCTAssertEqual(Topology.parseCPUList("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11])
        XCTAssertEqual(Topology.parseCPUList("5"), [5])
        XCTAssertNil(Topology.parseCPUList("3-1"))
        XCTAssertNil(Topology.parseCPUList("a"))
    }

    func testDiscoveryRespectsTheAffinityMask() {
        let t = Topology.discover()
        XCTAssertGreaterThan(t.cpuCount, 0)
        if let allowed = Topology.allowedCPUs() {
            XCTAssertEqual(t.nodes.flatMap(\.cpus).sorted(), allowed.sorted())
        }
    }

    /// 16 threads on this machine's few CPUs, 3,000 phases of varying item counts, with and without
    /// home threads for the items: every item of every phase runs exactly once, the serial step sees
    /// all of them done, phases run in order, and the run ends (no deadlock, no lost wake-up).
    func testWorkQueueWithMoreThreadsThanCores() {
        for (oversubscribed, affinity) in [(true, false), (false, false), (true, true), (false, true)] {
            let workers = 16, phases = 3000
            @Sendable func items(_ phase: Int) -> Int { 1 + (phase * 7) % 23 }
            let log = ItemLog(phases: phases, maxItems: 23)
            let queue = WorkQueue(firstPhaseItems: items(0), capacity: 23, threads: workers, oversubscribed: oversubscribed)
            let placement = Placement(topology: Topology.discover(), workers: workers, policy: .none)
            WorkerPool.run(placement: placement) { worker in
                queue.work(worker: worker.index, home: { phase, item in affinity && item % 3 != 0 ? (item * 5 + Int(phase)) % workers : nil },
                           execute: { phase, item in
                    log.ran(Int(phase), item)
                }, complete: { phase in
                    log.completed(Int(phase), expecting: items(Int(phase)))
                    return Int(phase) + 1 < phases ? items(Int(phase) + 1) : nil
                })
            }
            XCTAssertEqual(log.errors, [], "oversubscribed: \(oversubscribed), affinity: \(affinity)")
            XCTAssertEqual(log.completedPhases, phases)
        }
    }

    /// One thread whose home is every item, and one whose home is none: the first runs them all
    /// when it claims them before the other starts (it is alone for the first phase).
    func testHomeItemsAreClaimedByTheirHomeThread() {
        let queue = WorkQueue(firstPhaseItems: 40, capacity: 40, oversubscribed: false)
        let log = ItemLog(phases: 1, maxItems: 40)
        let ranOn = Seen(count: 40)
        queue.work(worker: 0, home: { _, _ in 0 }, execute: { phase, item in
            log.ran(Int(phase), item)
            ranOn.set(item, 0)
        }, complete: { phase in
            log.completed(Int(phase), expecting: 40)
            return nil
        })
        XCTAssertEqual(log.errors, [])
        XCTAssertEqual(ranOn.values, Array(repeating: 0, count: 40))
    }

    /// A thread that is done with its own items takes a slower thread's unclaimed home items from
    /// the far end while their owner works forward: thread 0 owns all 40 items and stalls in its
    /// first until thread 1 (no home items) has run 10; in the end thread 0 has run a prefix of the
    /// items in ascending order, thread 1 the rest in descending order, each item once.
    func testAnIdleThreadTakesASlowThreadsHomeItemsFromTheEnd() {
        let count = 40
        let queue = WorkQueue(firstPhaseItems: count, capacity: count, threads: 2, oversubscribed: false)
        let log = ItemLog(phases: 1, maxItems: count)
        let order = RunOrder(threads: 2)
        let placement = Placement(topology: Topology.discover(), workers: 2, policy: .none)
        WorkerPool.run(placement: placement) { worker in
            if worker.index == 1 { while !order.started(0) { usleep(100) } }  // thread 0 holds item 0 first
            queue.work(worker: worker.index, home: { _, _ in 0 }, execute: { phase, item in
                order.ran(item, on: worker.index)
                if item == 0 {  // at most 10 s, so a queue that keeps all its home items fails instead of hanging
                    let deadline = ContinuousClock.now + .seconds(10)
                    while order.count(on: 1) < 10 && ContinuousClock.now < deadline { usleep(100) }
                }
                log.ran(Int(phase), item)
            }, complete: { phase in
                log.completed(Int(phase), expecting: count)
                return nil
            })
        }
        XCTAssertEqual(log.errors, [])
        let mine = order.items(on: 0), stolen = order.items(on: 1)
        XCTAssertGreaterThanOrEqual(stolen.count, 10)
        XCTAssertEqual(mine, Array(0..<mine.count), "the owner works forward from the first item")
        XCTAssertEqual(stolen, Array((mine.count..<count).reversed()), "the other thread works back from the last")
    }

    /// The engine's sparse phase, whose items wait for other items of the same phase: per group,
    /// producer items (W1 updates) and then consumer items (forward items) with that group's home,
    /// which wait inside (`ProgressCounters`) until the group's producers are done and are not
    /// `ready` for other threads before that; one item without a home that is always ready (W2);
    /// and items without a home (row items) that are ready once one consumer of each group and that
    /// item are done, and must not be taken before. With 16 threads, homes planned for 2, and more
    /// or fewer CPUs than threads: each item must run after everything it waits for, every item
    /// once per phase, and no phase may hang (threads with home items stay until the waiting items
    /// are taken; the others may leave).
    func testItemsThatWaitForOtherItemsOfTheirPhase() {
        for oversubscribed in [true, false] {
            let workers = 16, phases = 2000, groups = 2, producers = 3, consumers = 4, waiting = 6
            let perGroup = producers + consumers, alwaysReady = groups * perGroup, count = alwaysReady + 1 + waiting
            let log = ItemLog(phases: phases, maxItems: count)
            let finished = Tally(count: count)  // per item: done in this phase
            // Counter groups: per group its producers; then each consumer; then the always-ready item.
            let counters = ProgressCounters(count: groups + groups * consumers + 1, oversubscribed: oversubscribed)
            let misses = Tally(count: 1)
            let queue = WorkQueue(firstPhaseItems: count, capacity: count, threads: workers, oversubscribed: oversubscribed)
            let placement = Placement(topology: Topology.discover(), workers: workers, policy: .none)
            @Sendable func group(_ item: Int) -> Int? { item < alwaysReady ? item / perGroup : nil }
            @Sendable func consumer(_ item: Int) -> Int? {
                group(item) != nil && item % perGroup >= producers ? item % perGroup - producers : nil
            }
            @Sendable func counter(ofConsumer c: Int, group g: Int) -> Int { groups + g * consumers + c }
            let readyCounter = groups + groups * consumers
            /// What item waits for: (counter, per-phase count, the items it stands for).
            @Sendable func waits(_ item: Int) -> [(Int, Int, [Int])] {
                if let g = group(item), consumer(item) != nil { return [(g, producers, Array(g * perGroup..<g * perGroup + producers))] }
                guard item > alwaysReady else { return [] }
                let c = (item - alwaysReady - 1) % consumers
                return (0..<groups).map { g in (counter(ofConsumer: c, group: g), 1, [g * perGroup + producers + c]) }
                    + [(readyCounter, 1, [alwaysReady])]
            }
            WorkerPool.run(placement: placement) { worker in
                queue.work(worker: worker.index, home: { _, item in group(item) }, ready: { phase, item in
                    waits(item).allSatisfy { counters.reached($0.0, $0.1 * (Int(phase) + 1)) }
                }, execute: { phase, item in
                    for (c, n, items) in waits(item) {
                        // A consumer's home thread may take it early and wait inside; an item
                        // without a home must not be taken before it is ready.
                        if group(item) != nil { counters.wait(c, until: n * (Int(phase) + 1)) }
                        if items.contains(where: { finished.value($0) != 1 }) { misses.add(0) }
                    }
                    finished.add(item)
                    if let g = group(item) {
                        if let c = consumer(item) { counters.add(counter(ofConsumer: c, group: g)) } else { counters.add(g) }
                    } else if item == alwaysReady {
                        counters.add(readyCounter)
                    }
                    log.ran(Int(phase), item)
                }, complete: { phase in
                    log.completed(Int(phase), expecting: count)
                    finished.reset()
                    return Int(phase) + 1 < phases ? count : nil
                })
            }
            XCTAssertEqual(log.errors, [], "oversubscribed: \(oversubscribed)")
            XCTAssertEqual(log.completedPhases, phases)
            XCTAssertEqual(misses.value(0), 0, "an item ran before the items it waits for were done")
        }
    }

    func testWorkersArePinnedWherePlanned() {
        let topology = Topology.discover()
        let placement = Placement(topology: topology, workers: topology.cpuCount, policy: .compact)
        let seen = Seen(count: placement.slots.count)
        let warnings = WorkerPool.run(placement: placement) { worker in
            seen.set(worker.index, Topology.currentCPU())
        }
        if warnings.isEmpty {
            XCTAssertEqual(seen.values, placement.slots.map(\.cpu))
        }
    }

    func testCoreRoundTrip() throws {
        let cpus = Topology.discover().nodes.flatMap(\.cpus)
        guard cpus.count >= 2 else { throw XCTSkip("one allowed CPU: nothing to measure between") }
        // Generous limit: the sanitizer builds make every atomic slower.
        let trip = try XCTUnwrap(CoreRoundTrip.nanoseconds(between: cpus[0], and: cpus[1], trips: 2_000, limit: .seconds(10)))
        // A cache line cannot come back in under a nanosecond, and 2,000 trips finished within 10 s.
        XCTAssertGreaterThan(trip, 1)
        XCTAssertLessThan(trip, 10e9 / 2_000)
        // A limit too short for the trips gives no number instead of a wrong one.
        XCTAssertNil(CoreRoundTrip.nanoseconds(between: cpus[0], and: cpus[1], trips: 2_000, limit: .nanoseconds(1)))
    }
}

/// Records which items ran in which phase (under a lock: the test checks the queue, not speed).
final class ItemLog: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [[Int]]
    private(set) var errors: [String] = []
    private(set) var completedPhases = 0

    init(phases: Int, maxItems: Int) { counts = Array(repeating: Array(repeating: 0, count: maxItems), count: phases) }

    func ran(_ phase: Int, _ item: Int) {
        lock.lock()
        defer { lock.unlock() }
        if phase != completedPhases { errors.append("item \(item) of phase \(phase) ran during phase \(completedPhases)") }
        counts[phase][item] += 1
    }

    func completed(_ phase: Int, expecting n: Int) {
        lock.lock()
        defer { lock.unlock() }
        if phase != completedPhases { errors.append("phase \(phase) completed out of order") }
        if counts[phase][0..<n] != ArraySlice(repeating: 1, count: n) || counts[phase][n...].contains(where: { $0 != 0 }) {
            errors.append("phase \(phase): item counts \(counts[phase])")
        }
        completedPhases += 1
    }
}

/// Counts under a lock (threads add; the test reads).
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [Int]
    init(count: Int) { counts = Array(repeating: 0, count: count) }
    func add(_ i: Int) { lock.lock(); counts[i] += 1; lock.unlock() }
    func value(_ i: Int) -> Int { lock.lock(); defer { lock.unlock() }; return counts[i] }
    func reset() { lock.lock(); counts = counts.map { _ in 0 }; lock.unlock() }
}

final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Int?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: Int?) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [Int?] { lock.lock(); defer { lock.unlock() }; return storage }
}

/// The items each thread ran, in order.
final class RunOrder: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [[Int]]
    init(threads: Int) { storage = Array(repeating: [], count: threads) }
    func ran(_ item: Int, on thread: Int) { lock.lock(); storage[thread].append(item); lock.unlock() }
    func items(on thread: Int) -> [Int] { lock.lock(); defer { lock.unlock() }; return storage[thread] }
    /// Counted under the lock: a copy of the array taken out of it would be read while `ran` appends.
    func count(on thread: Int) -> Int { lock.lock(); defer { lock.unlock() }; return storage[thread].count }
    func started(_ thread: Int) -> Bool { count(on: thread) > 0 }
}
