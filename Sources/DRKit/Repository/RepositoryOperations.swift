import Foundation
import Archive
import Common
import ObjectStorage

/// `drkit cat`: one object, authenticated and decrypted, as the plain gzip stream it holds.
public enum ObjectCat {
    public static func run(repository: Repository, reference: String, object: String, keys: KeyOptions,
                           output: ByteSink) throws {
        let file = try repository.resolve(reference)
        let backupId = file.summary.backupId
        let key = "\(backupId)/\(object)"
        let sink: ByteSink
        if file.encryption != nil {
            guard let dataKey = try keys.dataKey(for: file) else { throw DRKitError(.usage, "backup \(backupId) needs a key") }
            sink = StreamOpener(dataKey: dataKey, objectName: key, next: output)
        } else {
            sink = output
        }
        do {
            try repository.store.read(key: key, into: sink)
            try sink.finish()
        } catch let e as StorageError where e.kind == .notFound {
            throw DRKitError(.integrity, "object \(object) not found in backup \(backupId)")
        } catch {
            throw DRKitError.wrap(error, "object \(object)")
        }
    }
}

/// `drkit key rotate`: re-wraps every backup's data key under a new key-encryption key.
/// Only manifests are rewritten (atomically, one at a time); data objects are untouched.
public enum KeyRotation {
    public struct Outcome: Sendable {
        public var rotated: [String]
        public var skipped: [String]
    }

    public static func run(repository: Repository, from old: KeySource, to new: KeySource) throws -> Outcome {
        var outcome = Outcome(rotated: [], skipped: [])
        let backups = try repository.backups()
        // Check the old key against every backup first, so a wrong key changes nothing.
        for file in backups {
            guard let envelope = file.encryption else { continue }
            do { _ = try envelope.unwrap(backupId: file.summary.backupId, source: old) } catch {
                throw DRKitError.wrap(error)
            }
        }
        for var file in backups {
            guard let envelope = file.encryption else {
                outcome.skipped.append(file.summary.backupId)
                continue
            }
            do {
                file.encryption = try envelope.rewrapped(backupId: file.summary.backupId, from: old, to: new)
                file.summary.keyFingerprint = file.encryption?.kek.fingerprint
                try repository.writeManifest(file)
            } catch {
                throw DRKitError.wrap(error, "rotating the key of \(file.summary.backupId) (backups before it are rotated; run again with the new key as old for the rest)")
            }
            outcome.rotated.append(file.summary.backupId)
        }
        return outcome
    }
}

/// Writes bytes to a file descriptor (stdout for `cat`).
public final class FileDescriptorSink: ByteSink {
    private let fd: Int32
    public init(fd: Int32) { self.fd = fd }
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw DRKitError(.tool, "write failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
    public func finish() throws {}
}
