import Archive
import Foundation
import Common

/// Key files: a new random key-encryption key, written once, readable only by its owner.
public enum KeyFile {
    /// Creates `path` (mode 0600, never overwriting) holding a new key; returns its fingerprint.
    public static func create(at path: String) throws -> String {
        let text = KeySource.generateKeyText()
        try writeNew(path, text, mode: 0o600, what: "a key")
        return KeyEnvelope.fingerprint(ofKey: try KeySource.parseKey(Array(text.utf8)))
    }

    /// Creates an age identity file (mode 0600, never overwriting), as age-keygen writes it.
    public static func createAgeIdentity(at path: String) throws -> Age.Identity {
        let identity = try Age.Identity.generate()
        try writeNew(path, identity.fileText, mode: 0o600, what: "a key")
        return identity
    }

    /// Creates a minisign key pair: `path` (the secret key, unencrypted, mode 0600) and `path.pub`
    /// (mode 0644); neither may exist. Returns the public key.
    public static func createSigningKey(at path: String) throws -> Minisign.PublicKey {
        let key = try Minisign.SecretKey.generate()
        let publicPath = path + ".pub"
        if FileManager.default.fileExists(atPath: publicPath) { throw DRKitError(.refused, "\(publicPath) already exists; refusing to overwrite a key") }
        try writeNew(path, key.fileText, mode: 0o600, what: "a key")
        do { try writeNew(publicPath, key.publicKey.fileText, mode: 0o644, what: "a key") } catch {
            unlink(path)
            throw error
        }
        return key.publicKey
    }

    /// Writes `text` to a file that must not exist yet, synced before it counts as written.
    static func writeNew(_ path: String, _ text: String, mode: mode_t, what: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == EEXIST { throw DRKitError(.refused, "\(path) already exists; refusing to overwrite \(what)") }
            throw DRKitError(.usage, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
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
    }
}
