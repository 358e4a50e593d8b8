import ArgumentParser
import Foundation
import DRKit

@main
struct Drkit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drkit",
        abstract: "PostgreSQL backup, restore and disaster-recovery rehearsal.",
        discussion: """
            Exit codes: 0 success; 1 a check failed; 2 usage or bad input; 3 database error; \
            4 repository error or backup not found; 5 integrity error (wrong key, corrupted, truncated or missing object); \
            6 refused by a safety rule; 7 external tool failed. Checks (parity, schema diff, gate, drill, env check, \
            audit verify) use 0 pass, 1 fail, 2 any error.
            """,
        version: DRKitVersion.description,
        subcommands: [Backup.self, List.self, Verify.self, Restore.self, Stream.self, Parity.self, Schema.self, Drill.self, Gate.self, Env.self, Audit.self, Evidence.self, Cat.self, Key.self, Repo.self, Forget.self, Storage.self]
    )

    /// Argument errors exit 2 (not ArgumentParser's 64) so every command shares one table of codes.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
