import Foundation

/// A problem with a checkpoint file, rendered as one line naming the file.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file.
    public var path: String
    /// What is wrong with it.
    public var problem: String
    /// What to do.
    public var remedy: String

    /// An error about `path`.
    public init(path: String, problem: String, remedy: String = "pass a checkpoint written by ptrain (--checkpoint PATH)") {
        self.path = path
        self.problem = problem
        self.remedy = remedy
    }

    /// "PATH: problem; remedy", the one line the CLI prints.
    public var description: String { "\(path): \(problem); \(remedy)" }
}

/// One Float32 tensor of a safetensors file.
public struct Tensor: Equatable {
    /// The tensor's name in the header ("W1").
    public var name: String
    /// Its dimensions, outermost first.
    public var shape: [Int]
    /// Its elements, row-major.
    public var values: [Float]

    /// A tensor; `values` must hold the product of `shape` elements.
    public init(name: String, shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *))
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
/// {string: string}}, then the tensors' raw little-endian bytes; offsets are relative to the end of
/// the header. ptrain writes tensors in order with no gaps and pads the header with spaces to a
/// multiple of 8 bytes, so the data is 8-byte aligned for readers that map it.
public enum SafeTensors {
    /// Headers above 1 MiB are refused before parsing: a ptrain header is under 2 KB.
    public static let maximumHeaderSize = 1 << 20
    /// Nesting deeper than this is refused before JSON parsing (the format needs 3 levels), so a
    /// hostile header cannot exhaust the stack of a recursive parser.
    public static let maximumNesting = 4

    /// A safetensors file of `tensors`, stored back to back in the given order, with `metadata`.
    public static func encode(tensors: [Tensor], metadata: [String: String]) -> [UInt8] {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for t in tensors {
            let size = t.values.count * 4
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        out += json
        for t in tensors {
            for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        }
        return out
    }

    /// Parses and validates a whole file: header bounds, JSON shape, dtype, offsets that tile the
    /// data exactly. Every failure is a `CheckpointError`; nothing traps on any input.
    public static func decode(_ bytes: [UInt8], path: String) throws -> (tensors: [Tensor], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw CheckpointError(path: path, problem: "is truncated (\(bytes.count) bytes, no header length)") }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length <= UInt64(maximumHeaderSize) else {
            throw CheckpointError(path: path, problem: "header length \(length) exceeds the 1 MiB limit (not a ptrain checkpoint)")
        }
        let headerEnd = 8 + Int(length)
        guard headerEnd <= bytes.count else {
            throw CheckpointError(path: path, problem: "is truncated: header needs \(length) bytes, file has \(bytes.count - 8)")
        }
        let headerBytes = Array(bytes[8..<headerEnd])
        guard nestingDepth(headerBytes) <= maximumNesting else {
            throw CheckpointError(path: path, problem: "header JSON is nested too deeply")
        }
        guard let header = (try? JSONSerialization.jsonObject(with: Data(headerBytes))) as? [String: Any] else {
            throw CheckpointError(path: path, problem: "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let raw = header["__metadata__"] {
            guard let m = raw as? [String: String] else {
                throw CheckpointError(path: path, problem: "__metadata__ must map strings to strings")
            }
            metadata = m
        }
        let dataSize = bytes.count - headerEnd
        var entries: [(name: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any], let offsetsAny = entry["data_offsets"] as? [Any] else {
                throw CheckpointError(path: path, problem: "tensor \"\(name)\" lacks dtype, shape or data_offsets")
            }
            guard dtype == "F32" else {
                throw CheckpointError(path: path, problem: "tensor \"\(name)\" has dtype \(dtype), expected F32")
            }
            let shape = shapeAny.compactMap { exactInt($0) }
            let offsets = offsetsAny.compactMap { exactInt($0) }
            guard shape.count == shapeAny.count, shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 }), offsets.count == 2, offsets.count == offsetsAny.count else {
                throw CheckpointError(path: path, problem: "tensor \"\(name)\" has a malformed shape or data_offsets")
            }
            var elements = 1
            for d in shape {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, p <= dataSize / 4 + 1 else {
                    throw CheckpointError(path: path, problem: "tensor \"\(name)\" shape \(shape) is larger than the file")
                }
                elements = p
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataSize, offsets[1] - offsets[0] == elements * 4 else {
                throw CheckpointError(path: path, problem: "tensor \"\(name)\" data_offsets \(offsets) do not fit shape \(shape) and the \(dataSize) data bytes")
            }
            entries.append((name, shape, offsets[0], offsets[1]))
        }
        entries.sort { $0.begin < $1.begin }
        var expected = 0
        for e in entries {
            guard e.begin == expected else { throw CheckpointError(path: path, problem: "tensor data overlaps or leaves gaps at byte \(e.begin)") }
            expected = e.end
        }
        guard expected == dataSize else {
            throw CheckpointError(path: path, problem: "has \(dataSize - expected) bytes after the last tensor (truncated or corrupt)")
        }
        let tensors = entries.map { e -> Tensor in
            var values = [Float](repeating: 0, count: (e.end - e.begin) / 4)
            for i in values.indices {
                let o = headerEnd + e.begin + 4 * i
                values[i] = Float(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
            }
            return Tensor(name: e.name, shape: e.shape, values: values)
        }
        return (tensors, metadata)
    }

    /// An integer JSON number (NSNumber from JSONSerialization), or nil.
    static func exactInt(_ value: Any) -> Int? {
        if let n = value as? Int { return n }
        if let d = value as? Double, d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        return nil
    }

    /// Maximum bracket depth outside strings.
    static func nestingDepth(_ json: [UInt8]) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for c in json {
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
                deepest = max(deepest, depth)
            } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
            }
        }
        return deepest
    }
}
