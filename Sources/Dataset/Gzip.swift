import CZlib

/// gzip decompression through the system zlib.
public enum Gzip {
    /// Output is capped so a corrupt or hostile stream cannot exhaust memory: the buffer grows only
    /// as real output arrives, and never past this bound (MNIST needs 47 MB).
    public static let maximumOutputSize = 2 << 30

    /// True when `bytes` start with the gzip magic 1f 8b.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// Inflates a whole gzip member. `path` only names the file in errors.
    public static func decompress(_ input: [UInt8], path: String) throws -> [UInt8] {
        // The trailer's ISIZE (output size mod 2^32) is a hint for the first allocation only.
        var capacity = max(input.count * 4, 1 << 16)
        if input.count >= 18 {
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            if isize > 0 && isize <= input.count * 1100 { capacity = isize }  // deflate cannot exceed ~1032:1
        }
        capacity = min(capacity, maximumOutputSize)
        var output = [UInt8](repeating: 0, count: capacity)
        var stream = z_stream()
        guard czlib_inflate_init_auto(&stream) == Z_OK else {
            throw DatasetError(path: path, problem: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var produced = 0
        var status: Int32 = Z_OK
        try input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            while true {
                if produced == output.count {
                    guard output.count < maximumOutputSize else {
                        throw DatasetError(path: path, problem: "decompresses to more than the 2 GiB limit")
                    }
                    output.append(contentsOf: repeatElement(0, count: min(output.count, maximumOutputSize - output.count)))
                }
                status = output.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress! + produced
                    let room = min(outBuf.count - produced, Int(UInt32.max))
                    stream.avail_out = UInt32(room)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return s
                }
                if status == Z_STREAM_END { break }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    throw DatasetError(path: path, problem: "gzip stream is truncated (ends after \(produced) decompressed bytes)")
                }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                    throw DatasetError(path: path, problem: "corrupt gzip stream (\(message))")
                }
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}
