#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Writes a file so that a crash at any instant leaves either the old file or the new one, whole:
/// the bytes go to a temporary file in the same folder, which is fsync'ed and then renamed over the
/// target (rename(2) is atomic within a file system), and the folder is fsync'ed so the rename
/// itself survives a power loss.
public enum AtomicFile {
    /// The temporary file of the write in progress, if any. A process that exits in the middle of a
    /// write (ptrain on a second SIGINT/SIGTERM) calls `removeUnfinished()` first, so it leaves no
    /// stray `.NAME.tmp-PID` beside the target; the target itself is untouched.
    private static let unfinished = Mutex<String?>(nil)

    /// Removes the temporary file of a write in progress. Safe at any point of `write`: before the
    /// rename it deletes the partial file; after it, the temporary name no longer exists.
    public static func removeUnfinished() {
        if let path = takeUnfinished() { unlink(path) }
    }

    private static func takeUnfinished() -> String? {
        unfinished.withLock { path in
            defer { path = nil }
            return path
        }
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename, fsync of the folder.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let temporary = (folder.isEmpty ? "" : folder + "/") + ".\(name).tmp-\(getpid())"
        func fail(_ what: String) -> CheckpointError {
            let code = errno
            let remedy: String
            switch code {
            case ENOSPC, EDQUOT: remedy = "free some space on its file system, or write elsewhere"
            case EFBIG: remedy = "the file-size limit (ulimit -f) is too small for it: raise the limit, or write elsewhere"
            case EISDIR: remedy = "give the path of a file, not of a folder"
            default: remedy = "check that the folder exists and is writable"
            }
            return CheckpointError(path: path, problem: "\(what) failed (\(String(cString: strerror(code))))", remedy: remedy)
        }
        unfinished.withLock { $0 = temporary }
        defer { _ = takeUnfinished() }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("creating \(temporary)") }
        var written = 0
        let ok: Bool = bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                written += n
            }
            return true
        }
        guard ok, fsync(fd) == 0 else {
            let error = fail("writing")
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = fail("renaming \(temporary)")
            unlink(temporary)
            throw error
        }
        let dir = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }
}
