import ArgumentParser
import Foundation

/// Two ptrain binaries on the same run, alternated: whether a change made a run slower, as a ratio
/// measured in one sitting rather than against a remembered figure.
struct CompareBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Alternate runs of a baseline and a candidate ptrain binary with the same flags; report the ratio of median train times and check the digests agree.",
        discussion: """
        Example (the candidate is this checkout's build, the baseline a build of an earlier commit in a git worktree):
          git worktree add /tmp/base HEAD~3 && (cd /tmp/base && swift build -c release)
          swift run -c release --package-path Benchmarks ptrain-bench compare --baseline /tmp/base/.build/release/ptrain \\
              --candidate .build/release/ptrain --rounds 10 -- --workers 2
        Writes NAME.json (--name, default compare) to --output.
        """)

    @Option(help: ArgumentHelp("The ptrain binary before the change.", valueName: "path"))
    var baseline: String

    @Option(help: ArgumentHelp("The ptrain binary after the change.", valueName: "path"))
    var candidate: String

    @Option(help: "Rounds; each runs the baseline and the candidate once, in alternating order (one more, uncounted, warms up).")
    var rounds = 10

    @Option(help: "Folder for the JSON file.")
    var output = "Benchmarks/results"

    @Option(help: "The JSON file's name, without .json.")
    var name = "compare"

    @Argument(parsing: .captureForPassthrough, help: "The flags of the run (after --), e.g. -- --workers 2.")
    var flags: [String] = []

    struct Run: Codable {
        var train_seconds: Double
        var params_sha256: String
    }

    typealias Document = Recorded<Results>

    struct Results: Codable {
        var baseline: String
        var candidate: String
        var flags: [String]
        var rounds: Int
        var baseline_seconds: [Double]
        var candidate_seconds: [Double]
        var baseline_median: Double
        var candidate_median: Double
        /// Candidate median over baseline median: below 1 is faster.
        var ratio_of_medians: Double
        /// Median over rounds of (candidate / baseline in the same round).
        var ratio_paired: Double
        var same_digest: Bool
    }

    func run() throws {
        let passthrough = flags.first == "--" ? Array(flags.dropFirst()) : flags
        func once(_ binary: String) throws -> Run {
            let process = Process(), out = Pipe()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = passthrough + ["--json"]
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0, let run = try? JSONDecoder().decode(Run.self, from: data) else {
                throw ValidationError("\(binary) \(passthrough.joined(separator: " ")) --json failed (status \(process.terminationStatus))")
            }
            return run
        }
        var base: [Run] = [], cand: [Run] = []
        for round in 0...rounds {
            // Alternate which goes first, so neither always runs on a machine its twin just warmed.
            let b: Run, c: Run
            if round % 2 == 0 {
                b = try once(baseline)
                c = try once(candidate)
            } else {
                c = try once(candidate)
                b = try once(baseline)
            }
            guard round > 0 else { continue }
            base.append(b)
            cand.append(c)
            print(String(format: "round %2d: baseline %.3f s, candidate %.3f s (%.3fx)", round, b.train_seconds, c.train_seconds,
                         c.train_seconds / b.train_seconds))
        }
        let bs = base.map(\.train_seconds), cs = cand.map(\.train_seconds)
        let document = Document(Results(
            baseline: baseline, candidate: candidate, flags: passthrough, rounds: rounds,
            baseline_seconds: bs, candidate_seconds: cs, baseline_median: Stats(bs).median, candidate_median: Stats(cs).median,
            ratio_of_medians: Stats(cs).median / Stats(bs).median, ratio_paired: Stats(zip(cs, bs).map { $0 / $1 }).median,
            same_digest: Set(base.map(\.params_sha256) + cand.map(\.params_sha256)).count == 1))
        print(String(format: "median train time: baseline %.3f s, candidate %.3f s: %.3fx (paired per round: %.3fx); digests %@",
                     document.baseline_median, document.candidate_median, document.ratio_of_medians, document.ratio_paired,
                     document.same_digest ? "identical" : "DIFFER"))
        try document.write(to: "\(output)/\(name).json")
        print("wrote \(output)/\(name).json")
    }
}
