import Checkpoint
import FuzzDriver
import Model
import Training
import Foundation

/// A real checkpoint to edit: a 12-6-3 ReLU net with momentum (its parameters and one state slot:
/// six tensors), so that metadata the fuzzer keeps consistent with them reaches the shape checks,
/// the allocations, the copies and the digest, not only the header parser. Small, so that the
/// fuzzer runs thousands of inputs a second.
struct Base {
    /// The header's tensor entries (`"W1":{...},...`), without the braces around the whole header.
    var tensorEntries: [UInt8]
    var data: [UInt8]
    var metadata: [String: String]

    init() {
        var c = TrainingConfiguration()
        c.hidden = [6]
        c.activation = .relu
        c.optimizer.kind = .momentum
        let net = Network(spec: c.spec(input: 12, classes: 3), seed: 3)
        let checkpoint = TrainingCheckpoint(net: net, iteration: 7, configuration: c, datasetSHA256: String(repeating: "0", count: 64),
                                            kernels: "avx2", loss: 0.5)
        metadata = checkpoint.metadata
        let file = SafeTensors.encode(tensors: try! SafeTensors.decode(checkpoint.encoded(), path: "base").tensors, metadata: [:])
        let length = file[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        // The sorted header is {"W1":...,"__metadata__":{},...}: keep every entry but the metadata.
        let header = String(decoding: file[8..<8 + length], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        let entries = header.dropFirst().dropLast().replacingOccurrences(of: "\"__metadata__\":{},", with: "")
            .replacingOccurrences(of: ",\"__metadata__\":{}", with: "")
        tensorEntries = Array(entries.utf8)
        data = Array(file[(8 + length)...])
    }

    /// The file with `metadata`: the header written here rather than by JSONSerialization, which
    /// would take most of each input's time.
    func file(metadata: [String: String]) -> [UInt8] {
        var json: [UInt8] = Array("{\"__metadata__\":{".utf8)
        for (i, (key, value)) in metadata.enumerated() {
            if i > 0 { json.append(UInt8(ascii: ",")) }
            append(key, to: &json)
            json.append(UInt8(ascii: ":"))
            append(value, to: &json)
        }
        json += Array("},".utf8) + tensorEntries + [UInt8(ascii: "}")]
        while json.count % 8 != 0 { json.append(0x20) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        return out + json + data
    }

    /// `text` as a JSON string literal.
    func append(_ text: String, to json: inout [UInt8]) {
        json.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): json += [UInt8(ascii: "\\"), byte]
            case 0..<0x20: json += Array("\\u00".utf8) + [hex(byte >> 4), hex(byte & 15)]
            default: json.append(byte)
            }
        }
        json.append(UInt8(ascii: "\""))
    }

    func hex(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10 }
}

let base: Base = {
    let base = Base()
    // The unedited file must decode whole, or the fuzzer would only ever reach the error paths.
    precondition((try? TrainingCheckpoint.decode(base.file(metadata: base.metadata), path: "base")) != nil)
    return base
}()

/// One input: lines that edit the base checkpoint's metadata — `KEY=VALUE` sets a key, `-KEY`
/// removes one — before the file is decoded as a checkpoint. Errors are expected; crashes, hangs
/// and oversized allocations are findings.
func fuzzMetadata(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var metadata = base.metadata
    for line in text.split(separator: "\n") {
        if line.first == "-" {
            metadata[String(line.dropFirst())] = nil
        } else if let equals = line.firstIndex(of: "=") {
            metadata[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
    }
    _ = try? TrainingCheckpoint.decode(base.file(metadata: metadata), path: "fuzz")
    return 0
}

/// SwiftPM links an executable's entry as `FuzzCheckpointMetadata_main`; hand control to libFuzzer from there.
@_cdecl("FuzzCheckpointMetadata_main")
func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { fuzzMetadata($0, $1) }
}
