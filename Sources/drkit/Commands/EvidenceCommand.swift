import ArgumentParser
import Common
import DRKit
import Foundation

/// `--signing-key` for the commands that write evidence.
struct SigningFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Sign the evidence with this minisign secret key (unencrypted: `drkit key generate --type signing`, or `minisign -G -W`). Also: DRKIT_SIGNING_KEY (a path, or the key file's text).", valueName: "path"))
    var signingKey: String?

    func load() throws -> Minisign.SecretKey? { try EvidenceSignature.loadKey(path: signingKey) }
}

/// A minisign public key given as a file (KEY.pub) or as its RW... line.
func readPublicKey(_ value: String) throws -> Minisign.PublicKey {
    guard FileManager.default.fileExists(atPath: value) else { return try Minisign.PublicKey.parse(value) }
    guard let text = try? String(contentsOfFile: value, encoding: .utf8) else { throw DRKitError(.usage, "cannot read \(value)") }
    return try Minisign.PublicKey.parse(text)
}

struct Evidence: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check signed evidence folders offline.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that evidence folders are exactly what drkit signed.",
            discussion: """
                Every evidence folder under the given folders (one holding evidence.json or SHA256SUMS.minisig, at any \
                depth: one drill's folder, or a year of them) is checked: SHA256SUMS.minisig against SHA256SUMS, every \
                file listed there against its hash and its own .minisig, and nothing added. Each problem is named: \
                edited, removed or added file, a signature by another key, a folder not signed at all. The public key \
                must come from outside the folders checked (a key beside the evidence proves nothing). `minisign -Vm \
                FILE -p KEY.pub` checks any one file the same way. Exit codes: 0 every folder verified, 1 a problem \
                found, 2 usage error.
                """)

        @Argument(help: ArgumentHelp("Evidence folders, or folders holding them.", valueName: "dir"))
        var directories: [String]
        @Option(name: .long, help: ArgumentHelp("The signer's minisign public key: a file (KEY.pub) or its RW... line.", valueName: "key"))
        var publicKey: String
        @Flag(name: .long, help: "Print the result as JSON on stdout.")
        var json = false

        func run() throws {
            try runWithCheckExitCodes {
                let key = try loadPublicKey()
                let results = try EvidenceSignature.verify(paths: directories, key: key)
                if json {
                    Console.shared.output(try JSONText.encode(results))
                } else {
                    for result in results {
                        if result.passed {
                            Console.shared.output("OK \(result.folder): \(result.files) files signed by key \(key.keyIdText)")
                        } else {
                            Console.shared.output("FAILED \(result.folder): " + result.problems.joined(separator: "; "))
                        }
                    }
                }
                let failed = results.filter { !$0.passed }
                if !failed.isEmpty {
                    throw DRKitError(.checkFailed, "\(failed.count) of \(results.count) evidence folder(s) failed verification")
                }
            }
        }

        private func loadPublicKey() throws -> Minisign.PublicKey {
            guard FileManager.default.fileExists(atPath: publicKey) else { return try Minisign.PublicKey.parse(publicKey) }
            let keyPath = URL(fileURLWithPath: publicKey).standardizedFileURL.resolvingSymlinksInPath().path
            for directory in directories {
                let folder = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().path
                if keyPath.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/") {
                    throw DRKitError(.usage, "the public key \(publicKey) lies inside \(directory), which it is to check; anyone who can edit the evidence can replace it: give the key from where you keep it")
                }
            }
            return try readPublicKey(publicKey)
        }
    }
}
