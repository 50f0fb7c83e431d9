import Foundation
import Kernels
import Model

/// The lecture's numpy loop at any depth (Benchmarks/reference/two_layer_net.py), run in the same invocation.
struct NumpyResult: Codable {
    var dtype: String
    var threads: String
    var train_seconds: Double
    var samples_per_second: Double
    var test_accuracy: Double
}

enum NumpyPeer {
    static let script = repositoryRoot.appendingPathComponent("Benchmarks/reference/two_layer_net.py").path

    /// $PTRAIN_PYTHON (a virtual environment's python with numpy), else python3 on the PATH.
    static let python = ProcessInfo.processInfo.environment["PTRAIN_PYTHON"] ?? "python3"

    /// Why the peer cannot run here, or nil when python3 with numpy is available.
    static var unavailableReason: String? {
        let r = shell([python, "-c", "import numpy"], environment: [:])
        return r == nil ? "\(python) with numpy not found (set PTRAIN_PYTHON to a python that has it): numpy peer skipped" : nil
    }

    /// Runs the script on `data` (an IDX folder; nil: the embedded MNIST) once per BLAS thread setting and returns every result (the caller takes the fastest).
    static func run(dtype: String, iterations: Int, batchSize: Int, hidden: [Int], activation: ActivationKind = .sigmoid,
                    initialization: Initialization = .lecture, data: String? = nil, threadSettings: [Int]) -> [NumpyResult] {
        threadSettings.compactMap { threads in
            let env = ["OPENBLAS_NUM_THREADS": String(threads), "OMP_NUM_THREADS": String(threads), "MKL_NUM_THREADS": String(threads)]
            guard let out = shell([python, script, data ?? repositoryRoot.appendingPathComponent("Sources/Dataset/Resources/MNIST").path,
                                   "--iterations", String(iterations), "--batch-size", String(batchSize), "--hidden", hidden.map(String.init).joined(separator: ","),
                                   "--activation", activation.rawValue, "--init", initialization.rawValue,
                                   "--dtype", dtype], environment: env) else { return nil }
            return try? JSONDecoder().decode(NumpyResult.self, from: Data(out.utf8))
        }
    }

    /// stdout of a successful command, or nil.
    static func shell(_ arguments: [String], environment: [String: String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }
}
