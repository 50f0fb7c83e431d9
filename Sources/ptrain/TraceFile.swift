import Foundation
import Parallel
import Training

/// `ptrain --trace`: the work items of some iterations in the Trace Event Format that Perfetto
/// (ui.perfetto.dev) and chrome://tracing open: one track per worker, one slice per item and one
/// per serial step (on the worker that completed the phase).
///
/// Each item is a complete event ("ph": "X") with its start ("ts") and duration ("dur") in
/// microseconds from the start of the training loop, the worker as the thread ("tid"), its
/// category ("cat": compute or reduction) and the iteration (1-based, as the progress line counts)
/// and item index in "args"; a serial step is such an event named "serial step", of category
/// bookkeeping, without an item index. A metadata event ("ph": "M") names each worker's track
/// after its CPU.
struct TraceFile: Encodable {
    struct Event: Encodable {
        struct Args: Encodable {
            var iteration: Int?
            var item: Int?
            var name: String?
        }
        var name: String
        var cat: String?
        var ph: String
        var ts: Double?
        var dur: Double?
        var pid = 1
        var tid: Int
        var args: Args
    }

    var traceEvents: [Event]
    var displayTimeUnit = "ns"

    init(events: [TraceEvent], placement: Placement) {
        let names = placement.slots.map { slot in
            Event(name: "thread_name", ph: "M", tid: slot.worker,
                  args: .init(name: "worker \(slot.worker)" + (slot.cpu.map { " (cpu \($0))" } ?? " (unpinned)")))
        }
        traceEvents = names + events.map { e in
            Event(name: e.name, cat: e.category, ph: "X", ts: e.start * 1e6, dur: e.duration * 1e6, tid: e.worker,
                  args: .init(iteration: e.iteration + 1, item: e.item))
        }
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self) + "\n"
    }
}
