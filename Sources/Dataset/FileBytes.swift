#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads whole files into memory with POSIX calls, so that every failure maps to a `DatasetError`
/// naming the file (Foundation's `Data(contentsOf:)` hides the errno).
public enum FileBytes {
    /// Files larger than this are refused before any allocation: MNIST's largest file is 47 MB
    /// uncompressed, and 2 GiB leaves room for any IDX dataset a CPU trainer can hold.
    static let maximumFileSize = 2 << 30

    /// The whole file; every failure is a `DatasetError` naming it. Only a regular file is read:
    /// the open does not block (O_NONBLOCK), so a FIFO in its place is refused instead of waiting
    /// for a writer that may never come.
    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw DatasetError(path: path, problem: "cannot open (\(reason))",
                               remedy: "check the path; --data DIR must hold the four IDX files (optionally .gz)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DatasetError(path: path, problem: "cannot stat (\(String(cString: strerror(errno))))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw DatasetError(path: path, problem: "is \(kind(of: info.st_mode)), not a regular file", remedy: "pass a regular file")
        }
        let size = Int(info.st_size)
        guard size <= maximumFileSize else {
            throw DatasetError(path: path, problem: "is \(size) bytes, more than the 2 GiB limit for a dataset file")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < size {
                let n = Glibc.read(fd, buffer.baseAddress! + done, size - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw DatasetError(path: path, problem: "read failed after \(done) of \(size) bytes")
                }
                done += n
            }
        }
        return bytes
    }

    /// What a file of mode `mode` is, for error messages: "a folder", "a FIFO (named pipe)", ...
    public static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFREG: return "a regular file"
        default: return "a special file"
        }
    }
}
