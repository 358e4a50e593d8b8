import Yams
import Foundation

/// A promotion or cutover checklist (cutover-checklists/*.yaml): ordered steps, the first failure stops
/// the run unless the step is advisory.
public struct Checklist: Codable, Sendable {
    public struct Step: Codable, Sendable {
        public var name: String
        public var kind: String
        public var description: String?
        public var advisory: Bool?
        // schema-diff
        public var db: String?
        public var snapshot: String?
        public var exclude: [String]?
        // env-check
        public var rules: String?
        public var envFiles: [String]?
        public var includeProcessEnv: Bool?
        // verify, backup-fresh, parity (with source_backup)
        public var repo: String?
        public var backup: String?
        public var keyFile: String?
        public var passphraseEnv: String?
        public var maxAge: String?
        // parity
        public var source: String?
        public var sourceBackup: String?
        public var target: String?
        public var checksum: Bool?
        public var tables: [String]?
        // command, file-unchanged
        public var run: String?
        public var timeout: String?
        public var expectExit: Int?
        public var expectOutput: String?
        public var files: [String]?
        // attest
        public var prompt: String?

        enum CodingKeys: String, CodingKey {
            case name, kind, description, advisory, db, snapshot, exclude, rules
            case envFiles = "env_files", includeProcessEnv = "include_process_env"
            case repo, backup, keyFile = "key_file", passphraseEnv = "passphrase_env", maxAge = "max_age"
            case source, sourceBackup = "source_backup", target, checksum, tables
            case run, timeout, expectExit = "expect_exit", expectOutput = "expect_output", files, prompt
        }

        public var isAdvisory: Bool { advisory ?? false }
    }

    public var name: String
    public var description: String?
    public var steps: [Step]

    public static let kinds: [String: [String]] = [
        "schema-diff": ["db", "snapshot"],
        "env-check": ["rules"],
        "verify": ["repo"],
        "parity": ["target"],
        "backup-fresh": ["repo", "max_age"],
        "command": ["run"],
        "file-unchanged": ["run", "files"],
        "attest": [],
    ]

    public static func load(path: String) throws -> Checklist {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DRKitError(.usage, "cannot read checklist \(path)")
        }
        let checklist: Checklist
        do { checklist = try YAMLDecoder().decode(Checklist.self, from: text) } catch {
            throw DRKitError(.usage, "checklist \(path) is not valid: \(YAMLErrors.describe(error))")
        }
        try checklist.validate(path: path)
        return checklist
    }

    func validate(path: String) throws {
        guard !steps.isEmpty else { throw DRKitError(.usage, "checklist \(path) has no steps") }
        var seen = Set<String>()
        for step in steps {
            guard let required = Checklist.kinds[step.kind] else {
                throw DRKitError(.usage, "checklist \(path): step \(step.name) has unknown kind \"\(step.kind)\" (\(Checklist.kinds.keys.sorted().joined(separator: ", ")))")
            }
            guard seen.insert(step.name).inserted else { throw DRKitError(.usage, "checklist \(path): two steps are named \(step.name)") }
            for field in required where !step.has(field) {
                throw DRKitError(.usage, "checklist \(path): step \(step.name) (\(step.kind)) needs \(field)")
            }
            if step.kind == "parity" && (step.source == nil) == (step.sourceBackup == nil) {
                throw DRKitError(.usage, "checklist \(path): parity step \(step.name) needs exactly one of source and source_backup")
            }
            for duration in [step.timeout, step.maxAge].compactMap({ $0 }) where Durations.parse(duration) == nil {
                throw DRKitError(.usage, "checklist \(path): step \(step.name): \"\(duration)\" is not a duration (90s, 30m, 2h, 7d)")
            }
        }
    }
}

extension Checklist.Step {
    /// Whether the YAML field `name` was given.
    func has(_ name: String) -> Bool {
        switch name {
        case "db": return db != nil
        case "snapshot": return snapshot != nil
        case "rules": return rules != nil
        case "repo": return repo != nil
        case "max_age": return maxAge != nil
        case "target": return target != nil
        case "run": return run != nil
        case "files": return !(files ?? []).isEmpty
        default: return false
        }
    }
}
