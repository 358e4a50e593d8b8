import Archive
import Foundation
import Common

/// Key files: a new random key-encryption key, written once, readable only by its owner.
public enum KeyFile {
    /// Creates `path` (mode 0600, never overwriting) holding a new key; returns its fingerprint.
    public static func create(at path: String) throws -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw DRKitError(.refused, "\(path) already exists; refusing to overwrite a key") }
            throw DRKitError(.usage, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let text = KeySource.generateKeyText()
        do {
            try FileDescriptorSink(fd: fd).write(Array(text.utf8))
        } catch {
            unlink(path)
            throw DRKitError.wrap(error, "writing \(path)")
        }
        guard fsync(fd) == 0 else {
            unlink(path)
            throw DRKitError(.usage, "cannot sync \(path): \(String(cString: strerror(errno)))")
        }
        return KeyEnvelope.fingerprint(ofKey: try KeySource.parseKey(Array(text.utf8)))
    }
}
