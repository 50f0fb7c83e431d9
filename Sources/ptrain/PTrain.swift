import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

@main
struct PTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ptrain",
        abstract: "Deterministic data-parallel training of MLPs on the CPU: the lecture's TwoLayerNet on MNIST by default.",
        discussion: "With no subcommand, ptrain trains (same as `ptrain train`). Same seed, same bits, for any --workers.",
        version: "ptrain 0.1.0",
        subcommands: [Train.self, EvalCommand.self, VerifyCommand.self, TopologyCommand.self],
        defaultSubcommand: Train.self
    )

    static func main() {
        // A write beyond the file-size limit (RLIMIT_FSIZE, `ulimit -f`) then fails with EFBIG,
        // which ptrain reports in one line like a full disk, instead of killing the process with
        // SIGXFSZ in the middle of a checkpoint.
        signal(SIGXFSZ, SIG_IGN)
        guard let rank = Processes.launchedRank, rank > 0 else { return main(nil) }
        // Ranks other than 0 of an MPI job: every rank gets the same arguments, so a usage error is
        // rank 0's to print once; a run-time error (a file missing on this rank's machine, say)
        // is printed by the rank it hits.
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            Glibc.exit(exitCode(for: error).rawValue)
        }
        do {
            var command = command
            try command.run()
        } catch let error as ValidationError {
            Glibc.exit(exitCode(for: error).rawValue)
        } catch {
            exit(withError: error)
        }
    }
}
