import Foundation
import Kernels
import Model
import Seeding
import Training
import XCTest

/// A deterministic source of test data: Philox keyed by the test's seed, so a failure message that
/// prints the seed reproduces the case.
public struct TestRandom {
    public let seed: UInt64
    private var counter: UInt32 = 0
    private let rng: Philox4x32

    public init(seed: UInt64) {
        self.seed = seed
        rng = Philox4x32(seed: seed ^ 0x7E57_7E57)
    }

    /// Uniform in [-1, 1).
    public mutating func symmetric() -> Float {
        let w = rng.block(SIMD4(counter, 0, 0, 99))
        counter &+= 1
        return Float(Double(w[0]) * 0x1p-31 - 1)
    }

    public mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in symmetric() * scale } }

    public mutating func int(below bound: Int) -> Int {
        let w = rng.block(SIMD4(counter, 1, 0, 99))
        counter &+= 1
        return Philox4x32.uniform(w[0], w[1], below: bound)
    }
}

/// Runs `body` for seeds 0..<count; assertions inside should name `random.seed` so a failure
/// message reproduces its case.
public func forEachSeed(_ count: Int, _ body: (inout TestRandom) throws -> Void) rethrows {
    for seed in 0..<UInt64(count) {
        var random = TestRandom(seed: seed)
        try body(&random)
    }
}

/// Asserts |observed − expected| <= tolerance elementwise and prints the worst element.
public func assertClose(_ observed: [Double], _ expected: [Double], tolerance: [Double], _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(observed.count, expected.count, what, file: file, line: line)
    var worst = 0, worstRatio = -1.0
    for i in observed.indices {
        let ratio = abs(observed[i] - expected[i]) / max(tolerance[i], .leastNormalMagnitude)
        if !(ratio <= worstRatio) { worstRatio = ratio; worst = i }
    }
    guard !observed.isEmpty else { return }
    XCTAssertLessThanOrEqual(worstRatio, 1, "\(what): element \(worst) expected \(expected[worst]) observed \(observed[worst]) error \(abs(observed[worst] - expected[worst])) tolerance \(tolerance[worst])", file: file, line: line)
}

/// Unit roundoff of Float32 (2^-24).
public let float32Roundoff = 0x1p-24

/// Higham's γ_n = n·u / (1 − n·u): a sum of n rounded products satisfies
/// |fl(Σ a_k b_k) − Σ a_k b_k| <= γ_n · Σ |a_k b_k| (Higham, Accuracy and Stability, §3.1).
public func gamma(_ n: Int) -> Double {
    let nu = Double(n) * float32Roundoff
    return nu / (1 - nu)
}

/// True on x86-64, where the baseline variant multiplies and adds separately (arm64's fuses).
public var isX86: Bool {
    #if arch(x86_64)
    return true
    #else
    return false
    #endif
}

/// Every kernel variant this CPU supports.
public var supportedKernelSets: [KernelSet] {
    KernelVariant.allCases.filter(\.isSupported).map { KernelSet.make($0) }
}

/// The sanitizer this test process (and the `ptrain` beside it) was built with: "thread",
/// "address" or nil, from the runtime's entry symbol.
public var sanitizer: String? {
    guard let me = dlopen(nil, RTLD_NOW) else { return nil }
    defer { dlclose(me) }
    if dlsym(me, "__tsan_init") != nil { return "thread" }
    if dlsym(me, "__asan_init") != nil { return "address" }
    return nil
}

/// A fresh temporary folder, removed by the caller.
public func temporaryDirectory(_ name: String = #function) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("ptrain-\(name.filter(\.isLetter))-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The bytes of an IDX file with unsigned-byte elements.
public func idxBytes(dimensions: [Int], elements: [UInt8], type: UInt8 = 0x08, magic: (UInt8, UInt8) = (0, 0)) -> [UInt8] {
    var out: [UInt8] = [magic.0, magic.1, type, UInt8(dimensions.count)]
    for d in dimensions { out += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return out + elements
}

/// The repository's embedded MNIST folder.
public var embeddedMNISTFolder: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/Dataset/Resources/MNIST")
}

/// The built `ptrain` executable, beside the test bundle.
public var ptrainExecutable: URL {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if dir.lastPathComponent.hasSuffix(".xctest") || dir.path.contains(".xctest/") {
        while !dir.lastPathComponent.hasSuffix(".xctest") { dir.deleteLastPathComponent() }
        dir.deleteLastPathComponent()
    }
    return dir.appendingPathComponent("ptrain")
}

/// Result of running the `ptrain` executable.
public struct CommandResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// True when the process ended by a signal rather than exit().
    public var signaled: Bool
}

/// Runs `ptrain` (or a copy of it, `executable`) with `arguments`, optionally under `prefix`, e.g.
/// ["taskset", "-c", "0"].
public func runPTrain(_ arguments: [String], prefix: [String] = [], environment: [String: String] = [:],
                      executable: URL = ptrainExecutable) throws -> CommandResult {
    let process = Process()
    if prefix.isEmpty {
        process.executableURL = executable
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = prefix + [executable.path] + arguments
    }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self),
                         signaled: process.terminationReason == .uncaughtSignal)
}

/// ⌊count·part/parts⌋ ..< ⌊count·(part+1)/parts⌋: an arbitrary partition for the partition-invariance tests.
public func evenSplit(_ count: Int, _ part: Int, _ parts: Int) -> Range<Int> {
    count * part / parts..<count * (part + 1) / parts
}

/// Slices `part` of `parts` of the parameters: each layer's W rows split evenly, the biases with the last part.
public func parameterPartition(_ spec: NetworkSpec, _ part: Int, _ parts: Int) -> [ParameterSlice] {
    (0..<spec.layerCount).map { ParameterSlice(layer: $0, rows: evenSplit(spec.widths[$0], part, parts)) }
        + (part == parts - 1 ? [.biasesOnly] : [])
}

/// A Python interpreter with numpy and safetensors, for the checks that Python reads ptrain's
/// checkpoints: `$PTRAIN_PYTHON` (CI sets it to a virtual environment's), else `python3` on PATH.
/// Where neither has both packages the calling test is skipped — unless `CI=true`, where a missing
/// prerequisite of a required check fails the run instead of passing it silently.
public func checkpointPython() throws -> String {
    let candidates = [ProcessInfo.processInfo.environment["PTRAIN_PYTHON"], "python3"].compactMap { $0 }.filter { !$0.isEmpty }
    for python in candidates {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = [python, "-c", "import numpy, safetensors"]
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { continue }
        probe.waitUntilExit()
        if probe.terminationStatus == 0 { return python }
    }
    let message = "no Python with numpy and safetensors (tried \(candidates.joined(separator: ", "))); set PTRAIN_PYTHON to one"
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        XCTFail(message)
        throw CIPrerequisiteMissing(message: message)
    }
    throw XCTSkip(message)
}

struct CIPrerequisiteMissing: Error { var message: String }

/// Runs Tests/python/evaluate_checkpoint.py on `checkpoint` against the embedded MNIST test set;
/// returns its JSON object.
public func evaluateWithPython(_ checkpoint: String) throws -> [String: Any] {
    let python = try checkpointPython()
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("python/evaluate_checkpoint.py")
    let process = Process(), out = Pipe()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [python, script.path, checkpoint, embeddedMNISTFolder.path]
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "evaluate_checkpoint.py \(checkpoint)")
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// R ranks of a distributed run as threads of this process (`Collective` for tests): each rank's
/// `RankTrainer` runs on its own thread with its own network copy, and the collectives meet at a
/// barrier, so the distributed loop is tested without MPI.
public final class ThreadCollective: Collective, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    private let hub: Hub

    /// The `size` ranks of one run.
    public static func group(size: Int) -> [ThreadCollective] {
        let hub = Hub(size: size)
        return (0..<size).map { ThreadCollective(rank: $0, size: size, hub: hub) }
    }

    private init(rank: Int, size: Int, hub: Hub) {
        self.rank = rank
        self.size = size
        self.hub = hub
    }

    public func allgather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int], displacements: [Int]) {
        hub.buffers[rank] = buffer
        hub.wait()
        for r in 0..<size where r != rank {
            (buffer + displacements[r]).update(from: hub.buffers[r]! + displacements[r], count: counts[r])
        }
        hub.wait()
    }

    public func maximum(_ value: Int) -> Int {
        hub.values[rank] = value
        hub.wait()
        let result = (0..<size).map { hub.values[$0] }.max()!
        hub.wait()
        return result
    }

    /// The shared slots and a reusable barrier. Each slot is written by its rank before the
    /// barrier and read by the others after it; the slots are raw memory, so that ranks writing
    /// their own slots at once do not both modify one array (a Swift access race).
    private final class Hub: @unchecked Sendable {
        let size: Int
        let buffers: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>
        let values: UnsafeMutablePointer<Int>
        private let condition = NSCondition()
        private var arrived = 0
        private var generation = 0

        init(size: Int) {
            self.size = size
            buffers = .allocate(capacity: size)
            buffers.initialize(repeating: nil, count: size)
            values = .allocate(capacity: size)
            values.initialize(repeating: 0, count: size)
        }

        deinit {
            buffers.deallocate()
            values.deallocate()
        }

        func wait() {
            condition.lock()
            let mine = generation
            arrived += 1
            if arrived == size {
                arrived = 0
                generation += 1
                condition.broadcast()
            } else {
                while generation == mine { condition.wait() }
            }
            condition.unlock()
        }
    }
}

/// Runs `body(rank)` for every rank of `collectives` on its own thread and returns the results in rank order.
public func onRankThreads<T>(_ collectives: [ThreadCollective], _ body: @escaping @Sendable (ThreadCollective) -> T) -> [T] {
    let results = RankResults<T>(count: collectives.count)
    let group = DispatchGroup()
    for c in collectives {
        let thread = Thread {
            results.set(c.rank, body(c))
            group.leave()
        }
        thread.stackSize = 8 << 20
        group.enter()
        thread.start()
    }
    group.wait()
    return results.values.map { $0! }
}

private final class RankResults<T>: @unchecked Sendable {
    private let lock = NSLock()
    var values: [T?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: T) { lock.lock(); values[i] = value; lock.unlock() }
}
