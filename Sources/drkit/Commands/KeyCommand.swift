import ArgumentParser
import Common
import DRKit
import Foundation

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and rotate key-encryption keys; create evidence signing keys.",
        subcommands: [Generate.self, Rotate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new key to a file readable only by its owner (mode 0600); an existing file is never overwritten.",
            discussion: """
                --type data (default): a random 32-byte key (base64) that encrypts backups (--key-file). \
                --type age: an age identity file, as age-keygen writes it (--identity opens backups; `age -d -i FILE` \
                opens a key envelope by hand); its public recipient (age1...) is printed, for --recipient on the backup host. \
                --type signing: a minisign key pair for signing evidence: FILE, the unencrypted secret key \
                (--signing-key; keep it off the evidence host's writable folders), and FILE.pub, the public key \
                auditors verify with (`drkit evidence verify --public-key FILE.pub`, `minisign -V -p FILE.pub`).
                """)

        enum KeyType: String, ExpressibleByArgument, CaseIterable {
            case data, signing, age
        }

        @Option(name: .long, help: ArgumentHelp("File to create; an existing file is never overwritten.", valueName: "path"))
        var out: String
        @Option(name: .long, help: "data (encrypts backups), age (an age identity: backups sealed to its recipient) or signing (signs evidence; also writes FILE.pub).")
        var type: KeyType = .data

        func run() throws {
            try runReportingErrors {
                switch type {
                case .data:
                    let fingerprint = try KeyFile.create(at: out)
                    Console.shared.output("wrote a new key to \(out) (fingerprint \(fingerprint)); keep a copy off the backup host")
                case .age:
                    let identity = try KeyFile.createAgeIdentity(at: out)
                    Console.shared.output("""
                        wrote an age identity to \(out) (secret, mode 0600)
                        recipient: \(identity.recipient.text)
                        give the backup host only the recipient (--recipient or --recipients-file); keep the identity where restores run, and a copy in escrow
                        """)
                case .signing:
                    let key = try KeyFile.createSigningKey(at: out)
                    Console.shared.output("""
                        wrote a signing key to \(out) (secret, mode 0600) and its public key to \(out).pub (key id \(key.keyIdText))
                        public key: \(key.base64)
                        give auditors the public key from a place the evidence host cannot write
                        """)
                }
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
                backups whose old envelope Object Lock still protects; each is listed. The last lines name every \
                other key that still opens backups (e.g. one an earlier --keep-old-key rotation kept); \
                --retire-all-other-keys removes all their envelopes. An interrupted rotation is finished by running \
                it again with the same keys; once finished, it says "already rotated". Refused (exit 6) while a \
                backup or copy runs. To age recipients: --new-recipient/--new-recipients-file seals each data key to \
                them (keys/age-<fp>.age; no identity needed, so the backup host can run it); back from them: \
                --identity opens, --new-key-file wraps.
                """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var keys: KeyFlags
        @Option(name: .long, help: ArgumentHelp("File with the new key.", valueName: "path"))
        var newKeyFile: String?
        @Option(name: .long, help: ArgumentHelp("Environment variable holding the new passphrase.", valueName: "VAR"))
        var newPassphraseEnv: String?
        @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Rotate to age recipients: each backup's data key sealed to these public keys (repeatable); the old key's envelopes go as usual.", valueName: "age1..."))
        var newRecipient: [String] = []
        @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("File of age recipients to rotate to, one per line.", valueName: "path"))
        var newRecipientsFile: [String] = []
        @Flag(name: .long, help: "Keep the old key's envelopes: both keys open every backup.")
        var keepOldKey = false
        @Flag(name: .long, help: "Remove every envelope but the new key's, including those of keys an earlier --keep-old-key rotation kept.")
        var retireAllOtherKeys = false

        func validate() throws {
            if keepOldKey && retireAllOtherKeys { throw ValidationError("--keep-old-key and --retire-all-other-keys contradict each other: give one") }
        }

        func run() throws {
            try runReportingErrors {
                let identities = try keys.keyOptions.identities()
                let oldKey = try keys.keyOptions.resolve()
                guard oldKey != nil || !identities.isEmpty else {
                    throw DRKitError(.usage, "give the current key with --key-file, --passphrase-env, DRKIT_KEY or --identity")
                }
                let recipients = try RecipientFlags(recipient: newRecipient, recipientsFile: newRecipientsFile).recipients()
                let newSymmetric = newKeyFile != nil || newPassphraseEnv != nil
                guard newSymmetric != !recipients.isEmpty else {
                    throw DRKitError(.usage, newSymmetric ? "give the new key as --new-key-file/--new-passphrase-env or as --new-recipient, not both"
                                                          : "give the new key with --new-key-file, --new-passphrase-env or --new-recipient")
                }
                let old: KeyRotation.Side = oldKey.map { .key($0) } ?? .age(identities: identities, recipients: [])
                let new: KeyRotation.Side
                if newSymmetric {
                    guard let source = try KeyOptions(keyFile: newKeyFile, passphraseEnv: newPassphraseEnv, environment: ProcessInfo.processInfo.environment.filter { $0.key != "DRKIT_KEY" }).resolve() else {
                        throw DRKitError(.usage, "the new key could not be read")
                    }
                    new = .key(source)
                } else {
                    new = .age(identities: [], recipients: recipients)
                }
                let repo = try repository.open(create: false)
                let outcome = try KeyRotation.run(repository: repo, from: old, to: new, keepOld: keepOldKey, retireOthers: retireAllOtherKeys)
                Console.shared.output(Rotate.describe(outcome).joined(separator: "\n"))
            }
        }

        /// What the rotation did, and exactly which keys open the backups now.
        static func describe(_ outcome: KeyRotation.Outcome) -> [String] {
            let unencrypted = outcome.skipped.isEmpty ? "" : "; \(outcome.skipped.count) unencrypted backup(s) left as they are"
            if outcome.wasAlreadyDone {
                return ["already rotated: all \(outcome.alreadyRotated.count) encrypted backup(s) open with the new key, and with no other key; nothing to do" + unencrypted]
            }
            var lines = ["re-wrapped the data keys of \(outcome.rotated.count) backup(s)"
                         + (outcome.alreadyRotated.isEmpty ? "" : "; \(outcome.alreadyRotated.count) were rotated by an earlier, interrupted run (finished now)")
                         + unencrypted]
            if outcome.retired > 0 { lines.append("removed \(outcome.retired) envelope(s) of other keys") }
            lines += outcome.oldKeyStillOpens.filter { $0.reason != "--keep-old-key" }.map { "the old key still opens \($0.backupId): \($0.reason)" }
            let byKey = Dictionary(grouping: outcome.otherKeys.flatMap { backup, keys in keys.map { ($0, backup) } }, by: \.0)
            if byKey.isEmpty {
                if !(outcome.rotated.isEmpty && outcome.alreadyRotated.isEmpty) { lines.append("only the new key opens these backups") }
            } else {
                for (key, pairs) in byKey.sorted(by: { $0.key < $1.key }) {
                    let ids = pairs.map(\.1).sorted()
                    lines.append("\(key) also opens \(ids.count) backup(s) (e.g. \(ids[0])); --retire-all-other-keys removes its envelopes")
                }
            }
            return lines
        }
    }
}