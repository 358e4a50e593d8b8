import Foundation
import Common

/// A repository in a local directory. Objects are written to a hidden temporary file beside the
/// target and renamed into place after fsync, so a crash never leaves a partial object under its key.
public final class FileStore: ObjectStore, Sendable {
    public let root: URL
    /// The root with every symbolic link resolved, for the inside-the-repository check of each read.
    private let realRoot: String
    static let partialMarker = ".partial-"

    public init(root: URL, create: Bool) throws {
        self.root = root.standardizedFileURL
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: self.root.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw StorageError(.failed, "repository \(self.root.path) is not a directory") }
        } else if create {
            do {
                try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
            } catch {
                throw StorageError(.denied, "cannot create repository directory \(self.root.path): \(error.localizedDescription)")
            }
        } else {
            throw StorageError(.notFound, "repository directory \(self.root.path) does not exist")
        }
        realRoot = FileStore.realPath(self.root.path) ?? self.root.path
    }

    public var location: String { "file://" + root.path }

    func path(_ key: String) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw StorageError(.failed, "invalid object key \"\(key)\"")
        }
        return root.path + "/" + key
    }

    /// Finished objects are read-only (0444): nothing in a repository is edited after it is written.
    /// A directory has no Object Lock; asking for one is refused rather than silently ignored.
    public func makeWriter(key: String, lock: ObjectLock?) throws -> ObjectWriter {
        try makeWriter(key: key, lock: lock, syncFolder: true)
    }

    /// `syncFolder: false` skips the fsync of the object's folder after the rename (the object's own bytes
    /// are still synced before it is renamed into place, overlapping the rest of the work):
    /// `syncFolders(under:)` makes the names durable later, one fsync per folder instead of per object.
    public func makeWriter(key: String, lock: ObjectLock?, syncFolder: Bool) throws -> ObjectWriter {
        if lock != nil {
            throw StorageError(.invalidLocation, "\(location) is a directory: S3 Object Lock needs an s3:// repository in a bucket created with Object Lock enabled (local objects are made read-only instead)")
        }
        let target = try path(key)
        let directory = (target as NSString).deletingLastPathComponent
        let name = (target as NSString).lastPathComponent
        let temporary = directory + "/." + name + FileStore.partialMarker + SecureRandom.hex(6)
        // The folder is made only when the open finds it missing (most objects go into one that exists);
        // a concurrent delete removes folders it empties, so if it removed ours in between, make it again.
        var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        for _ in 0..<5 where fd < 0 && errno == ENOENT {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        }
        guard fd >= 0 else {
            throw StorageError(errno == EACCES ? .denied : .failed,
                               "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        return FileObjectWriter(fd: fd, temporary: temporary, target: target, key: key, syncFolder: syncFolder)
    }

    /// Makes the names of objects under `prefix` durable: an fsync of the folder and of each folder in it.
    public func syncFolders(under prefix: String) throws {
        let top = try path(prefix)
        var folders = [top]
        if let enumerator = FileManager.default.enumerator(atPath: top) {
            while let relative = enumerator.nextObject() as? String {
                if (enumerator.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { folders.append(top + "/" + relative) }
            }
        }
        for folder in folders {
            let fd = open(folder, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError(.failed, "cannot open \(folder): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw StorageError(.failed, "fsync \(folder): \(String(cString: strerror(errno)))") }
        }
    }

    public func read(key: String, range: Range<Int64>?, into sink: ByteSink) throws {
        let file = try path(key)
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { throw StorageError(.notFound, "object \(key) is missing from \(location)") }
            if errno == ELOOP { throw StorageError(.failed, "object \(key) is a symbolic link; objects are never read from outside \(location)") }
            throw StorageError(.failed, "cannot open \(file): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // A linked folder on the way (data -> /elsewhere) is refused too: the opened file must lie inside the root.
        guard let real = realPath(of: fd), real.hasPrefix(realRoot + "/") else {
            // Removed between the open and this check (a lease's heartbeat replaced, a backup cleaned): the
            // object is gone, which its readers handle, rather than a link out of the repository.
            var status = stat()
            if fstat(fd, &status) == 0, status.st_nlink == 0 { throw StorageError(.notFound, "object \(key) was removed from \(location) while it was read") }
            throw StorageError(.failed, "object \(key) resolves outside \(location) (a symbolic link); objects are never read from outside the repository")
        }
        if let range, lseek(fd, off_t(range.lowerBound), SEEK_SET) < 0 {
            throw StorageError(.failed, "cannot seek in \(file): \(String(cString: strerror(errno)))")
        }
        var remaining = range.map { $0.upperBound - $0.lowerBound } ?? Int64.max
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let want = Int(min(Int64(buffer.count), remaining))
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError(.failed, "cannot read \(file): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return }
            remaining -= Int64(n)
            try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    private func realPath(of fd: Int32) -> String? { FileStore.realPath("/proc/self/fd/\(fd)") }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public func listFolders(prefix: String) throws -> [String] {
        let directory = prefix.isEmpty ? root.path : try path(String(prefix.dropLast()))
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    /// Walks only the folder the prefix names (what comes before its last "/"), and of that only the
    /// subfolders the prefix can reach: a lease check lists `locks/`, never the repository's every object.
    public func list(prefix: String) throws -> [ObjectInfo] {
        let folder = prefix.range(of: "/", options: .backwards).map { String(prefix[..<$0.lowerBound]) } ?? ""
        guard folder.isEmpty || (try? path(folder)) != nil else { return [] }
        var results: [ObjectInfo] = []
        walk(folder, descendInto: { key in (key + "/").hasPrefix(prefix) || prefix.hasPrefix(key + "/") }) { key, info in
            guard key.hasPrefix(prefix) else { return }
            let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
            results.append(ObjectInfo(key: key, size: Int64(info.st_size), modified: modified))
        }
        return results.sorted { $0.key < $1.key }
    }

    /// Regular files below `relative` (symbolic links are not followed); hidden names are temporary
    /// files of writes in progress or interrupted, and are not objects.
    private func walk(_ relative: String, descendInto: (String) -> Bool, _ visit: (String, stat) -> Void) {
        let directory = relative.isEmpty ? root.path : root.path + "/" + relative
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        let descriptor = dirfd(handle)
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let key = relative.isEmpty ? name : relative + "/" + name
            switch info.st_mode & S_IFMT {
            case S_IFDIR where descendInto(key): walk(key, descendInto: descendInto, visit)
            case S_IFREG where !name.hasPrefix("."): visit(key, info)
            default: break
            }
        }
    }

    public func delete(keys: [String]) throws {
        var directories = Set<String>()
        for key in keys {
            let file = try path(key)
            if unlink(file) != 0 && errno != ENOENT {
                throw StorageError(.failed, "cannot delete \(file): \(String(cString: strerror(errno)))")
            }
            directories.insert((file as NSString).deletingLastPathComponent)
        }
        // Remove folders the deletes emptied, deepest first; rmdir refuses non-empty ones.
        for directory in directories.sorted(by: { $0.count > $1.count }) {
            var current = directory
            while current.count > root.path.count, rmdir(current) == 0 {
                current = (current as NSString).deletingLastPathComponent
            }
        }
    }
}

extension FileStore: IncompleteWriteListing {
    /// Hidden temporary files left by interrupted writes.
    public func incompleteWrites() throws -> [IncompleteWrite] {
        guard let enumerator = FileManager.default.enumerator(atPath: root.path) else { return [] }
        var out: [IncompleteWrite] = []
        while let relative = enumerator.nextObject() as? String {
            guard (relative as NSString).lastPathComponent.contains(FileStore.partialMarker) else { continue }
            let modified = (enumerator.fileAttributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            out.append(IncompleteWrite(key: relative, id: relative, started: modified))
        }
        return out
    }

    public func discard(_ write: IncompleteWrite) throws {
        let file = try path(write.id)
        if unlink(file) != 0 && errno != ENOENT {
            throw StorageError(.failed, "cannot delete \(file): \(String(cString: strerror(errno)))")
        }
    }
}

final class FileObjectWriter: ObjectWriter {
    private var fd: Int32
    private let temporary: String
    private let target: String
    private let key: String
    private var buffer: [UInt8] = []
    private let flushThreshold = 1 << 20
    private let syncFolder: Bool

    init(fd: Int32, temporary: String, target: String, key: String, syncFolder: Bool = true) {
        self.fd = fd
        self.temporary = temporary
        self.target = target
        self.key = key
        self.syncFolder = syncFolder
    }

    deinit { abort() }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw StorageError(.failed, "write to \(key) after it was finished") }
        buffer.appendBytes(bytes)
        if buffer.count >= flushThreshold { try flush() }
    }

    private func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError(.failed, "cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func finish() throws {
        guard fd >= 0 else { return }
        try flush()
        guard fsync(fd) == 0 else { throw StorageError(.failed, "fsync \(temporary): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o444)
        close(fd)
        fd = -1
        guard rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StorageError(.failed, "cannot move \(temporary) into place: \(reason)")
        }
        guard syncFolder else { return }
        let directory = (target as NSString).deletingLastPathComponent
        let dirFd = open(directory, O_RDONLY)
        if dirFd >= 0 {
            fsync(dirFd)
            close(dirFd)
        }
    }

    func abort() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
        unlink(temporary)
    }
}

extension FileStore: DeferredDurability {}
