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
            abstract: "Give every backup an envelope for a new key, then remove the old key's; nothing is rewritten.",
            discussion: """
                The old key comes from --key-file / --passphrase-env / DRKIT_KEY; the new one from --new-key-file or \
                --new-passphrase-env. Each backup's data key is wrapped under the new key in a new object \
                (<backup>/keys/<fingerprint>.json); once every backup has one, the old key's envelope objects are \
                removed, so the old key opens nothing any more (--keep-old-key keeps them). No manifest or data object \
                is edited. The old key keeps opening format-1 backups (their envelope is inside the manifest) and \
                backups whose old envelope Object Lock still protects; each is listed. An interrupted rotation is \
                finished by running it again with the same keys. Refused (exit 6) while a backup or copy runs.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var keys: KeyFlags
        @Option(name: .long, help: ArgumentHelp("File with the new key.", valueName: "path"))
        var newKeyFile: String?
        @Option(name: .long, help: ArgumentHelp("Environment variable holding the new passphrase.", valueName: "VAR"))
        var newPassphraseEnv: String?
        @Flag(name: .long, help: "Keep the old key's envelopes: both keys open every backup.")
        var keepOldKey = false

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
                let outcome = try KeyRotation.run(repository: repo, from: old, to: new, keepOld: keepOldKey)
                var lines = ["re-wrapped the data keys of \(outcome.rotated.count) backup(s)" +
                             (outcome.skipped.isEmpty ? "" : "; \(outcome.skipped.count) unencrypted backup(s) left as they are")]
                lines += outcome.oldKeyStillOpens.map { "the old key still opens \($0.backupId): \($0.reason)" }
                if !keepOldKey && outcome.oldKeyStillOpens.isEmpty && !outcome.rotated.isEmpty {
                    lines.append("the old key's envelopes are removed: only the new key opens these backups")
                }
                Console.shared.output(lines.joined(separator: "\n"))
            }
        }
    }
}
