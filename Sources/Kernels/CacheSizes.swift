#if canImport(Glibc)
import Glibc
#endif

/// The per-core data cache sizes the GEMM blocks for (`GEMMBlocking`), read once at start-up.
/// They choose how a product is walked, never what it computes: the bits do not depend on them.
public struct CacheSizes: Sendable, Equatable {
    /// Level-1 data cache of one core, bytes.
    public var l1Data: Int
    /// Level-2 cache of one core, bytes.
    public var l2: Int

    /// What glibc reports (cpuid), else the kernel's sysfs entries for CPU 0, else 32 KiB and
    /// 512 KiB, the smallest per-core sizes of the x86-64 CPUs this project runs on (a too-small
    /// guess only costs speed).
    public static let current: CacheSizes = {
        let fallback = CacheSizes(l1Data: 32 << 10, l2: 512 << 10)
        return CacheSizes(l1Data: probe(level: 1, sysconfName: Int32(_SC_LEVEL1_DCACHE_SIZE)) ?? fallback.l1Data,
                          l2: probe(level: 2, sysconfName: Int32(_SC_LEVEL2_CACHE_SIZE)) ?? fallback.l2)
    }()

    static func probe(level: Int, sysconfName: Int32) -> Int? {
        let reported = sysconf(sysconfName)
        if reported > 0 { return reported }
        for index in 0..<8 {
            let folder = "/sys/devices/system/cpu/cpu0/cache/index\(index)/"
            guard let found = readLine(folder + "level"), Int(found) == level,
                  let type = readLine(folder + "type"), type != "Instruction",
                  let size = readLine(folder + "size") else { continue }
            return parseSize(size)
        }
        return nil
    }

    /// "48K", "1024K", "2M" or a plain byte count.
    static func parseSize(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = text.last, let unit = units[last] { return Int(text.dropLast()).map { $0 * unit } }
        return Int(text)
    }

    static func readLine(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let line = String(cString: buffer)
        return line.hasSuffix("\n") ? String(line.dropLast()) : line
    }
}
