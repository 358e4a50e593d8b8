import Archive
import Foundation
import Common

/// How the operator supplied the key-encryption key. Resolved lazily so that commands that do not
/// need it (list) never read it.
public struct KeyOptions: Sendable {
    public var keyFile: String?
    public var passphraseEnv: String?
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

    /// Unwraps a backup's data key from whichever of its envelopes this key opens; nil for
    /// unencrypted backups.
    public func dataKey(for file: ManifestFile, in repository: Repository) throws -> [UInt8]? {
        guard file.isEncrypted else { return nil }
        guard let source = try resolve() else {
            throw DRKitError(.usage, "backup \(file.summary.backupId) is encrypted (made with key fingerprint \(file.summary.keyFingerprint ?? "?")): give --key-file, DRKIT_KEY or --passphrase-env")
        }
        return try KeyEnvelopes.dataKey(for: file, source: source, in: repository)
    }
}
