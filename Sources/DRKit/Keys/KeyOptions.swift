import Archive
import Foundation
import Common

/// How the operator supplied the key-encryption key. Resolved lazily so that commands that do not
/// need it (list) never read it.
public struct KeyOptions: Sendable {
    public var keyFile: String?
    public var passphraseEnv: String?
    /// age identity files (`--identity`): open backups whose data key was sealed to their recipients.
    public var identityFiles: [String] = []
    /// A backup's own data key, 32 raw bytes (what `age -d` prints from an age key envelope): the
    /// by-hand path of `cat`, with no key-encryption key at all.
    public var dataKeyFile: String?
    public var environment: [String: String]

    public init(keyFile: String? = nil, passphraseEnv: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.keyFile = keyFile
        self.passphraseEnv = passphraseEnv
        self.environment = environment
    }

    /// The key source, or nil when none was given (`DRKIT_KEY` is consulted last).
    public func resolve() throws -> KeySource? {
        if keyFile != nil && passphraseEnv != nil {
            throw DRKitError(.usage, "give either --key-file or --passphrase-env, not both")
        }
        if let keyFile {
            guard let data = FileManager.default.contents(atPath: keyFile) else {
                throw DRKitError(.usage, "cannot read key file \(keyFile)")
            }
            do { return .key(try KeySource.parseKey([UInt8](data))) } catch {
                throw DRKitError(.usage, "key file \(keyFile) is not a drkit key: \(error)")
            }
        }
        if let passphraseEnv {
            guard let value = environment[passphraseEnv], !value.isEmpty else {
                throw DRKitError(.usage, "environment variable \(passphraseEnv) (from --passphrase-env) is not set or empty")
            }
            return .passphrase(value)
        }
        if let value = environment["DRKIT_KEY"], !value.isEmpty {
            do { return .key(try KeySource.parseKey(Array(value.utf8))) } catch {
                throw DRKitError(.usage, "DRKIT_KEY is not a drkit key: \(error)")
            }
        }
        return nil
    }

    /// Whether anything was given that can open an encrypted backup.
    public func canOpenBackups() throws -> Bool { try resolve() != nil || !identityFiles.isEmpty || dataKeyFile != nil }

    /// The age identities of `--identity` files, in order.
    public func identities() throws -> [Age.Identity] {
        try identityFiles.flatMap { path -> [Age.Identity] in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DRKitError(.usage, "cannot read identity file \(path)") }
            do { return try Age.Identity.parseFile(text) } catch { throw DRKitError(.usage, "identity file \(path): \(error)") }
        }
    }

    /// Unwraps a backup's data key from whichever of its envelopes these keys open (age identities
    /// first); nil for unencrypted backups.
    public func dataKey(for file: ManifestFile, in repository: Repository) throws -> [UInt8]? {
        guard file.isEncrypted else { return nil }
        let backupId = file.summary.backupId
        if let dataKeyFile {
            guard let bytes = FileManager.default.contents(atPath: dataKeyFile), bytes.count == 32 else {
                throw DRKitError(.usage, "\(dataKeyFile) does not hold a 32-byte data key (the output of `age -d -i IDENTITY <backup>/keys/age-*.age`)")
            }
            return [UInt8](bytes)
        }
        let identities = try identities()
        let source = try resolve()
        if !identities.isEmpty {
            if let dataKey = try AgeEnvelopes.open(backupId: backupId, identities: identities, in: repository) { return dataKey }
            if source == nil {
                let recipients = try AgeEnvelopes.all(backupId: backupId, in: repository).count
                throw DRKitError(.integrity, recipients == 0
                    ? "backup \(backupId) has no age envelope (made with key fingerprint \(file.summary.keyFingerprint ?? "?")): give its --key-file, DRKIT_KEY or --passphrase-env"
                    : "none of the \(identities.count) age identit\(identities.count == 1 ? "y" : "ies") given opens backup \(backupId): it was sealed to other recipients (\(file.summary.keyFingerprint ?? "?"))")
            }
        }
        guard let source else {
            throw DRKitError(.usage, "backup \(backupId) is encrypted (made with key fingerprint \(file.summary.keyFingerprint ?? "?")): give --key-file, DRKIT_KEY, --passphrase-env, or --identity for a backup sealed to age recipients; a host that holds only recipients cannot read backups")
        }
        return try KeyEnvelopes.dataKey(for: file, source: source, in: repository)
    }
}
