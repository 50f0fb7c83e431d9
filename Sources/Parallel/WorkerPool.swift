import CNuma
import CSupport
import Foundation

/// What a worker thread knows about itself.
public struct WorkerContext: Sendable {
    /// The worker's number, 0 ..< workers.
    public let index: Int
    /// Where it runs.
    public let slot: Placement.Slot
}

/// Runs one SPMD body on N threads for the duration of a job (a whole training run): threads are
/// created once and pinned by the placement; the body synchronises through a `WorkQueue`, so a
/// training iteration costs no thread creation and, while workers <= cores, no kernel wake-up.
public enum WorkerPool {
    /// Runs `body` on `placement.slots.count` new threads and returns when all have returned.
    /// Returns the warnings raised (e.g. pinning refused), each once.
    @discardableResult
    public static func run(placement: Placement, body: @escaping @Sendable (WorkerContext) -> Void) -> [String] {
        let warnings = WarningLog()
        var threads: [pthread_t] = []
        for slot in placement.slots {
            let context = WorkerContext(index: slot.worker, slot: slot)
            let job = ThreadJob {
                if placement.pins, let cpu = slot.cpu {
                    let status = csupport_pin_current_thread(Int32(cpu))
                    if status != 0 {
                        warnings.add("warning: could not pin workers to CPUs (\(String(cString: strerror(status)))); continuing unpinned")
                    }
                }
                body(context)
            }
            var thread = pthread_t()
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 8 << 20)
            let created = pthread_create(&thread, &attributes, { raw in
                Unmanaged<ThreadJob>.fromOpaque(raw!).takeRetainedValue().work()
                return nil
            }, Unmanaged.passRetained(job).toOpaque())
            pthread_attr_destroy(&attributes)
            precondition(created == 0, "pthread_create failed: \(created)")
            threads.append(thread)
        }
        for thread in threads { pthread_join(thread, nil) }
        return warnings.messages
    }
}

private final class ThreadJob {
    let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }
}

/// Collects distinct warnings from several threads.
final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var seen: [String] = []
    func add(_ message: String) {
        lock.lock()
        if !seen.contains(message) { seen.append(message) }
        lock.unlock()
    }
    var messages: [String] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }
}
