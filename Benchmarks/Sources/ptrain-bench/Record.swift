import Foundation

/// Where a results file came from: the command that wrote it, the commit it measured, the machine
/// and the date. Every record in Benchmarks/results carries these fields beside its results, and
/// the report prints them under each section (docs/benchmarks.md).
struct Provenance: Codable {
    var date: String
    var command: String
    var commit: String
    var machine: String

    /// This run's: now, `benchCommand`, this checkout's commit (`currentCommit`) and this machine.
    static func current() -> Provenance {
        Provenance(date: ISO8601DateFormatter().string(from: Date()), command: benchCommand, commit: currentCommit(),
                   machine: machineDescription())
    }

    /// "`command` · commit · machine · date", the line under a section's title in the report.
    var line: String { "`\(command)` · commit \(commit) · \(machine) · \(date.prefix(10))" }
}

/// A results file: its provenance and one benchmark's results, as one flat JSON object (the
/// provenance's four fields beside the results' own) — the records' format, written and read here
/// in one place instead of four fields repeated in every benchmark's document type. Reads of the
/// results' fields pass through (`record.records` for `record.results.records`).
@dynamicMemberLookup
struct Recorded<Results: Codable>: Codable {
    var provenance: Provenance
    var results: Results

    /// `results` as measured by this run (`Provenance.current`).
    init(_ results: Results, provenance: Provenance = .current()) {
        self.provenance = provenance
        self.results = results
    }

    // Both halves read and write the same JSON object (a keyed container at the same path), so
    // their fields sit side by side.
    init(from decoder: Decoder) throws {
        provenance = try Provenance(from: decoder)
        results = try Results(from: decoder)
    }

    func encode(to encoder: Encoder) throws {
        try provenance.encode(to: encoder)
        try results.encode(to: encoder)
    }

    subscript<T>(dynamicMember field: KeyPath<Results, T>) -> T { results[keyPath: field] }

    /// Writes the record to `path`, creating its folder, as sorted, indented JSON (the form
    /// `ptrain-bench report` reads and a diff shows line by line).
    func write(to path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }
}

/// How this benchmark was invoked ("ptrain-bench e2e --repeats 5"), for its record.
var benchCommand: String { (["ptrain-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " ") }

/// The repository's commit (`git rev-parse --short HEAD`), with "+changes" when the code in the work
/// tree (the packages' sources and manifests, the reference peers) differs from it: what a result
/// file was measured on.
func currentCommit() -> String {
    let git = { (arguments: [String]) in NumpyPeer.shell(["git", "-C", repositoryRoot.path] + arguments, environment: [:]) }
    guard let head = git(["rev-parse", "--short", "HEAD"])?.trimmingCharacters(in: .whitespacesAndNewlines) else { return "unknown" }
    let code = ["Sources", "Package.swift", "Benchmarks/Sources", "Benchmarks/Package.swift", "Benchmarks/reference"]
    let dirty = !(git(["status", "--porcelain", "--untracked-files=no", "--"] + code) ?? "").isEmpty
    return head + (dirty ? "+changes" : "")
}

/// "AMD EPYC, 2 CPUs": lscpu's model name and the online CPU count.
func machineDescription() -> String {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last
        .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) CPUs"
}
