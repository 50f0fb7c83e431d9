import Checkpoint
import Dispatch
import Foundation

/// SIGINT and SIGTERM: the first asks training to stop after the current iteration (the caller then
/// writes its checkpoint and exits with status 75); a second one exits at once with 128 + signal,
/// also while that last checkpoint is being written (its temporary file is removed first, and the
/// checkpoint at PATH stays the previous whole one). Keep the sources until the command returns.
enum StopSignals {
    /// `also`: further signals that stop the same way; `quiet`: print nothing (ranks other than 0).
    static func install(also: [Int32] = [], quiet: Bool = false, onFirst: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
        let count = SignalCount()
        return ([SIGINT, SIGTERM] + also).map { signo in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler {
                // Signals arriving close together are coalesced into one event; `data` counts them.
                if count.add(Int(source.data)) == 1 {
                    if !quiet { warn("\nptrain: stopping after this iteration (send the signal again to exit at once)") }
                    onFirst()
                } else {
                    AtomicFile.removeUnfinished()
                    _exit(128 + signo)
                }
            }
            source.resume()
            return source
        }
    }
}

private final class SignalCount: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add(_ n: Int) -> Int { lock.lock(); defer { lock.unlock() }; value += max(n, 1); return value }
}
