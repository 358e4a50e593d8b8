import Archive
import ArgumentParser
import Common
import DRKit
import Foundation

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and rotate key-encryption keys.",
        subcommands: [Generate.self, Rotate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new random 32-byte key (base64) to a file readable only by its owner (mode 0600).")

        @Option(name: .long, help: ArgumentHelp("File to create; an existing file is never overwritten.", valueName: "path"))
        var out: String

        func run() throws {
            try runReportingErrors {
                let fingerprint = try KeyFile.create(at: out)
                Console.shared.output("wrote a new key to \(out) (fingerprint \(fingerprint)); keep a copy off the backup host")
            }
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-wrap every backup's data key under a new key; no data object is rewritten.",
            discussion: "The old key comes from --key-file / --passphrase-env / DRKIT_KEY; the new one from --new-key-file or --new-passphrase-env.")

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var keys: KeyFlags
        @Option(name: .long, help: ArgumentHelp("File with the new key.", valueName: "path"))
        var newKeyFile: String?
        @Option(name: .long, help: ArgumentHelp("Environment variable holding the new passphrase.", valueName: "VAR"))
        var newPassphraseEnv: String?

        func run() throws {
            try runReportingErrors {
                guard let old = try keys.keyOptions.resolve() else {
                    throw DRKitError(.usage, "give the current key with --key-file, --passphrase-env or DRKIT_KEY")
                }
                guard newKeyFile != nil || newPassphraseEnv != nil else {
                    throw DRKitError(.usage, "give the new key with --new-key-file or --new-passphrase-env")
                }
                guard let new = try KeyOptions(keyFile: newKeyFile, passphraseEnv: newPassphraseEnv, environment: ProcessInfo.processInfo.environment.filter { $0.key != "DRKIT_KEY" }).resolve() else {
                    throw DRKitError(.usage, "the new key could not be read")
                }
                let repo = try repository.open(create: false)
                let outcome = try KeyRotation.run(repository: repo, from: old, to: new)
                Console.shared.output("re-wrapped the data keys of \(outcome.rotated.count) backup(s)" +
                                      (outcome.skipped.isEmpty ? "" : "; \(outcome.skipped.count) unencrypted backup(s) left as they are"))
            }
        }
    }
}
