import Dataset
import Model

extension Network {
    /// SHA-256 (hex) of the parameter buffer as little-endian Float32 bytes in the order W1, b1, W2, b2, ...:
    /// the run's fingerprint in `--json` (`params_sha256`) and in the determinism tests.
    public var parametersSHA256: String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(layout.count * 4)
        for v in parameters.buffer {
            let bits = v.bitPattern.littleEndian
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 8))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 16))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 24))
        }
        return SHA256.hex(bytes)
    }
}
