import Parallel
import Synchronization
import XCTest

final class ParallelTests: XCTestCase {
    let twoSocket = Topology(nodes: [.init(id: 0, cpus: [0, 1, 2, 3]), .init(id: 1, cpus: [4, 5, 6, 7])])
    let fourNode = Topology(nodes: [.init(id: 0, cpus: [0, 1]), .init(id: 1, cpus: [2, 3]),
                                    .init(id: 2, cpus: [4, 5]), .init(id: 3, cpus: [6, 7])])

    func cpus(_ p: Placement) -> [Int?] { p.slots.map(\.cpu) }
    func nodes(_ p: Placement) -> [Int] { p.slots.map(\.node) }

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

    /// 16 threads on this machine's few CPUs, 2,000 barrier rounds: every thread sees every
    /// round's increments (no thread passes early) and the run ends (no deadlock).
    func testBarrierWithMoreThreadsThanCores() {
        let workers = 16, rounds = 2000
        let counter = Counter()
        let placement = Placement(topology: Topology.discover(), workers: workers, policy: .none)
        WorkerPool.run(placement: placement, cpuCount: Topology.discover().cpuCount) { worker in
            for round in 0..<rounds {
                counter.value.wrappingAdd(1, ordering: .relaxed)
                worker.barrier.wait()
                let seen = counter.value.load(ordering: .relaxed)
                if seen < (round + 1) * workers { counter.errors.wrappingAdd(1, ordering: .relaxed) }
                worker.barrier.wait()
            }
        }
        XCTAssertEqual(counter.value.load(ordering: .relaxed), workers * rounds)
        XCTAssertEqual(counter.errors.load(ordering: .relaxed), 0)
    }

    func testWorkersArePinnedWherePlanned() {
        let topology = Topology.discover()
        let placement = Placement(topology: topology, workers: topology.cpuCount, policy: .compact)
        let seen = Seen(count: placement.slots.count)
        let warnings = WorkerPool.run(placement: placement, cpuCount: topology.cpuCount) { worker in
            seen.set(worker.index, Topology.currentCPU())
        }
        if warnings.isEmpty {
            XCTAssertEqual(seen.values, placement.slots.map(\.cpu))
        }
    }
}

final class Counter: @unchecked Sendable {
    let value = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
}

final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Int?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: Int?) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [Int?] { lock.lock(); defer { lock.unlock() }; return storage }
}
