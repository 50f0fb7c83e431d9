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
        main(nil)
    }
}
