import ArgumentParser
import Foundation
#if MPI
import MPICollective
#endif
import Parallel
import Training

/// The processes a command runs in: this one alone, or the ranks of an MPI job (`mpirun -n R
/// ptrain ...`, with a ptrain built with `--traits MPI`). Rank 0 is the primary: it writes the
/// run's files and prints its report; every rank trains its share.
struct Processes {
    let collective: (any Collective)?
    /// This rank's CPUs: the machine's, shared among the ranks on it (`MPICollective.placement`).
    let topology: Topology
    #if MPI
    private let mpi: MPICollective?
    #endif

    var rank: Int { collective?.rank ?? 0 }
    var count: Int { collective?.size ?? 1 }
    var isPrimary: Bool { rank == 0 }

    /// The rank an Open MPI launcher gave this process, before MPI is started (nil outside a job).
    static var launchedRank: Int? { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"].flatMap(Int.init) }

    /// Joins the MPI job this process was started in, if any.
    static func join() throws -> Processes {
        let machine = try Topology.current()
        #if MPI
        guard MPICollective.launched() else { return Processes(collective: nil, topology: machine, mpi: nil) }
        let mpi = try MPICollective()
        return Processes(collective: mpi, topology: mpi.placement(of: machine), mpi: mpi)
        #else
        if let size = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init), size > 1 {
            throw RunError("this ptrain was built without MPI, so mpirun would start \(size) separate runs; build it with `swift build -c release --traits MPI` (README, \"More than one machine\")")
        }
        return Processes(collective: nil, topology: machine)
        #endif
    }

    /// "rank r of R (local l of n on HOST)" in a job, nil alone.
    var label: String? {
        #if MPI
        if let mpi {
            return "rank \(mpi.rank) of \(mpi.size) (local rank \(mpi.localRank) of \(mpi.localSize) on \(ProcessInfo.processInfo.hostName))"
        }
        #endif
        return nil
    }

    /// Every rank's `text` in rank order on the primary, nil on the others.
    func gather(_ text: String) -> [String]? {
        #if MPI
        if let mpi { return mpi.gather(text) }
        #endif
        return [text]
    }

    /// Fails on every rank, before training, unless every rank has the same `value` of `what`
    /// (the training set's digest, the kernel variant, the checkpoint it resumes): ranks that
    /// differ in any of them would each compute their share with other data or other rounding,
    /// and end with parameters no single process computes. Collective; rank 0 names the ranks
    /// that differ from it.
    func checkSame(_ what: String, _ value: String, remedy: String) throws {
        guard let collective else { return }
        var differing: [String] = []
        if let all = gather(value) {
            differing = all.enumerated().filter { $0.element != all[0] }.map { "rank \($0.offset): \($0.element)" }
        }
        guard collective.maximum(differing.isEmpty ? 0 : 1) == 0 else {
            guard isPrimary else { throw ExitCode(1) }
            throw RunError("the ranks differ in \(what) (rank 0: \(value); \(differing.prefix(3).joined(separator: "; "))\(differing.count > 3 ? "; ..." : "")); \(remedy)")
        }
    }

    /// Ends the job's MPI use after a run every rank completed or stopped together.
    func finish() {
        #if MPI
        mpi?.finish()
        #endif
    }
}
