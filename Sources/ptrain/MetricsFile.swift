import Foundation

/// The `--metrics` CSV: a header, then one row per iteration, `iteration,epoch,loss,test_accuracy`
/// (accuracy empty where no evaluation fell).
///
/// A resumed run continues the file of the run it resumes: the rows up to the checkpoint's
/// iteration are kept, and this run's rows follow, so a run stopped and resumed any number of
/// times ends with the file an uninterrupted run writes. Rows after the checkpoint (iterations the
/// stopped run trained past its last checkpoint) are dropped: the resumed run recomputes them.
struct MetricsFile {
    static let header = "iteration,epoch,loss,test_accuracy"

    /// Each kept row: its iteration, its loss (for the plot) and the text as written.
    var rows: [(iteration: Int, loss: Double, text: String)] = []

    /// The rows of `path` up to iteration `last`, when the file exists and is a metrics file whose
    /// rows run 1, 2, ... up to at least `last`; nil otherwise (missing, another file, or a gap:
    /// then the resumed run cannot extend it).
    static func continuing(_ path: String, through last: Int) -> MetricsFile? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(header) else { return nil }
        var file = MetricsFile()
        for line in lines.dropFirst() where !line.isEmpty {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 4, let iteration = Int(fields[0]), let loss = Double(fields[2]),
                  iteration == file.rows.count + 1 else { return nil }
            guard iteration <= last else { break }
            file.rows.append((iteration, loss, String(line)))
        }
        return file.rows.count == last ? file : nil
    }

    var csv: String { ([Self.header] + rows.map(\.text)).joined(separator: "\n") + "\n" }
}
