import ArgumentParser

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
}
