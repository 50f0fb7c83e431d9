import Foundation
import Training

/// The live progress line on stderr (only when stderr is a terminal): iteration, loss, samples/s,
/// ETA, redrawn at most 10 times a second so printing never shows in the timings.
final class ProgressLine: @unchecked Sendable {
    let enabled: Bool
    let batchSize: Int
    private var lastDraw = -1.0
    private var drawn = false

    init(enabled: Bool, batchSize: Int) {
        self.enabled = enabled
        self.batchSize = batchSize
    }

    func update(_ r: IterationReport) {
        guard enabled, r.elapsedSeconds - lastDraw >= 0.1 || r.iteration == r.iterations else { return }
        lastDraw = r.elapsedSeconds
        let rate = Double(r.iteration * batchSize) / max(r.elapsedSeconds, 1e-9)
        let eta = Double(r.iterations - r.iteration) * r.elapsedSeconds / Double(max(r.iteration, 1))
        let line = String(format: "\r\u{1B}[Kiteration %d/%d  loss %.4f  %.0f samples/s  ETA %.1f s",
                          r.iteration, r.iterations, r.loss, rate, eta)
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
