#if MPI
import CMPI
import Foundation
import Parallel
import Training

/// `Collective` over Open MPI: one process per rank, started by `mpirun`.
///
/// MPI is initialised with MPI_THREAD_SERIALIZED: the collectives run in the engine's serial
/// steps, on whichever worker thread completes a phase, never two at once.
public final class MPICollective: Collective, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// This process's place among the ranks on its machine (MPI_COMM_TYPE_SHARED).
    public let localRank: Int
    public let localSize: Int
    private let world: MPI_Comm
    private let local: MPI_Comm

    /// Whether `mpirun` (or another Open MPI launcher) started this process.
    public static func launched(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil
    }

    /// Joins the job (MPI_Init_thread). Call once per process.
    public init() throws {
        var provided: Int32 = 0
        let status = MPI_Init_thread(nil, nil, cmpi_thread_serialized(), &provided)
        guard status == cmpi_success() else { throw MPIError("MPI_Init_thread failed (error \(status))") }
        guard provided >= cmpi_thread_serialized() else {
            throw MPIError("this Open MPI grants thread level \(provided), ptrain needs MPI_THREAD_SERIALIZED; use an Open MPI built with threads")
        }
        world = cmpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &s)
        rank = Int(r)
        size = Int(s)
        var node = MPI_Comm(bitPattern: 0)
        MPI_Comm_split_type(world, cmpi_comm_type_shared(), r, cmpi_info_null(), &node)
        local = node!
        MPI_Comm_rank(local, &r)
        MPI_Comm_size(local, &s)
        localRank = Int(r)
        localSize = Int(s)
    }

    public func allgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int], displacements: [Int]) {
        let c = counts.map { Int32($0) }, d = displacements.map { Int32($0) }
        let status = MPI_Allgatherv(cmpi_in_place(), 0, cmpi_float(), buffer, c, d, cmpi_float(), world)
        precondition(status == cmpi_success(), "MPI_Allgatherv failed (error \(status))")  // MPI's default handler aborts first
    }

    public func maximum(_ value: Int) -> Int {
        var mine = Int64(value), result: Int64 = 0
        MPI_Allreduce(&mine, &result, 1, cmpi_int64(), cmpi_max(), world)
        return Int(result)
    }

    /// The CPUs this rank's workers use. Where mpirun bound the ranks (their allowed CPUs differ
    /// on this machine), its binding is kept; where every rank on the machine was given the same
    /// CPUs (`--bind-to none`), they are split among them (`Topology.share`), so ranks never pin
    /// threads to the same CPU. Collective among the machine's ranks.
    public func placement(of topology: Topology) -> Topology {
        let words = 64  // 4096 CPUs
        var mask = [Int64](repeating: 0, count: words)
        for cpu in topology.nodes.flatMap(\.cpus) where cpu < 64 * words { mask[cpu / 64] |= Int64(bitPattern: 1 << UInt64(cpu % 64)) }
        var all = [Int64](repeating: 0, count: words * localSize)
        MPI_Allgather(&mask, Int32(words), cmpi_int64(), &all, Int32(words), cmpi_int64(), local)
        let same = (0..<localSize).allSatisfy { Array(all[$0 * words..<($0 + 1) * words]) == mask }
        return same ? topology.share(localRank, of: localSize) : topology
    }

    /// Every rank's `text`, in rank order, on rank 0 (nil on the others). Collective.
    public func gather(_ text: String) -> [String]? {
        var bytes = Array(text.utf8).map { CChar(bitPattern: $0) }
        var length = Int32(bytes.count)
        var lengths = [Int32](repeating: 0, count: size)
        MPI_Gather(&length, 1, cmpi_int32(), &lengths, 1, cmpi_int32(), 0, world)
        var offsets = [Int32](repeating: 0, count: size)
        for r in 0..<size where r > 0 { offsets[r] = offsets[r - 1] + lengths[r - 1] }
        var all = [CChar](repeating: 0, count: Int(lengths.reduce(0, +)))
        MPI_Gatherv(&bytes, length, cmpi_char(), &all, lengths, offsets, cmpi_char(), 0, world)
        guard rank == 0 else { return nil }
        return (0..<size).map { r in
            String(decoding: all[Int(offsets[r])..<Int(offsets[r] + lengths[r])].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Leaves the job after a run every rank completed or stopped together (MPI_Finalize). A rank
    /// that fails exits without it, and mpirun then ends the others.
    public func finish() { MPI_Finalize() }
}

/// MPI could not be started.
public struct MPIError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
#endif
