import Yams
import Foundation

/// A DR rehearsal scenario (manifests/drills/*.yaml). Every field can also come from `drkit drill` flags.
public struct DrillScenario: Codable, Sendable {
    public struct Smoke: Codable, Sendable {
        public var name: String?
        /// A SQL file: every statement that returns rows must return true in its first column...
        public var file: String?
        /// ...or one query.
        public var sql: String?
        /// What the first column of the first row must be (default "t", i.e. true).
        public var expect: String?

        public init(name: String? = nil, file: String? = nil, sql: String? = nil, expect: String? = nil) {
            self.name = name
            self.file = file
            self.sql = sql
            self.expect = expect
        }
    }

    public struct Criteria: Codable, Sendable {
        public var maxRtoSeconds: Double?
        public var maxRpoMinutes: Double?
        public var parityRequired: Bool?
        public var smokeRequired: Bool?

        public init() {}

        enum CodingKeys: String, CodingKey {
            case maxRtoSeconds = "max_rto_seconds", maxRpoMinutes = "max_rpo_minutes"
            case parityRequired = "parity_required", smokeRequired = "smoke_required"
        }
    }

    public struct Roles: Codable, Sendable {
        public var ic: String?
        public var `operator`: String?
        public var observer: String?
        public var reviewer: String?

        public init() {}
    }

    public var name: String
    public var environment: String?
    public var description: String?
    /// Source database (conninfo or URL); may be absent when the source is gone (parity then uses the manifest).
    public var source: String?
    public var repo: String
    /// Region failover: after the backup, copy it to this repository...
    public var copyTo: String?
    /// ...and restore from this one (default: `copy_to`), acting as if `repo` were lost: nothing reads
    /// it after the copy.
    public var restoreFrom: String?
    /// `fresh` (take a backup first) or `latest` / a backup id.
    public var backup: String?
    public var keyFile: String?
    public var passphraseEnv: String?
    /// Server to restore on (conninfo; its dbname is replaced by the scratch name). Default: the source's server.
    public var target: String?
    public var scratchDatabase: String?
    public var migrate: String?
    public var migrateTimeout: String?
    public var smoke: [Smoke]?
    public var parityChecksum: Bool?
    public var criteria: Criteria?
    public var roles: Roles?
    public var jobs: Int?
    public var keep: Bool?
    /// Point-in-time drill: restore to this time (`restore --to-time`) from the newest linked base at or
    /// before it and the change archive (`drkit stream`).
    public var toTime: String?

    enum CodingKeys: String, CodingKey {
        case name, environment, description, source, repo, copyTo = "copy_to", restoreFrom = "restore_from", backup, keyFile = "key_file", passphraseEnv = "passphrase_env"
        case target, scratchDatabase = "scratch_database", migrate, migrateTimeout = "migrate_timeout", smoke
        case parityChecksum = "parity_checksum", criteria, roles, jobs, keep, toTime = "to_time"
    }

    public init(name: String, repo: String) {
        self.name = name
        self.repo = repo
    }

    public static func load(path: String) throws -> DrillScenario {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DRKitError(.usage, "cannot read drill scenario \(path)")
        }
        let scenario: DrillScenario
        do { scenario = try YAMLDecoder().decode(DrillScenario.self, from: text) } catch {
            throw DRKitError(.usage, "drill scenario \(path) is not valid: \(YAMLErrors.describe(error))")
        }
        if let toTime = scenario.toTime, CommitTime.parse(toTime) == nil {
            throw DRKitError(.usage, "drill scenario \(path): to_time \(toTime) is not a timestamp with a time zone (e.g. 2026-12-04T20:06:58Z)")
        }
        return scenario
    }
}
