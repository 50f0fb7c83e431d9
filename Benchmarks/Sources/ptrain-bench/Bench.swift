import ArgumentParser

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ptrain-bench",
        abstract: "ptrain's benchmarks: kernels against the FMA peak, end-to-end runs, scaling, input choice, and the numpy peer.",
        subcommands: [KernelsBenchmark.self, EndToEndBenchmark.self, ScalingBenchmark.self, TimeToAccuracyBenchmark.self, InputBenchmark.self, CompareBenchmark.self, ReportCommand.self])
}
