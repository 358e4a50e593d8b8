import Archive
import PostgresClient
import Foundation
import Common

/// One recorded step of a runbook execution (gate or drill).
public struct AuditRecord: Codable, Sendable, Equatable {
    public var runId: String
    public var checklist: String
    public var step: String
    public var stepIndex: Int
    public var operatorName: String
    public var startedAt: Date
    public var finishedAt: Date
    /// passed | failed | advisory-failed | skipped
    public var result: String
    public var exitCode: Int?
    /// SHA-256 of the step's captured output.
    public var outputSHA256: String
    /// Hash of the record before this one (64 zeros for the first), and of this one.
    public var prevHash: String
    public var hash: String

    enum CodingKeys: String, CodingKey {
        case runId = "run_id", checklist, step, stepIndex = "step_index", operatorName = "operator"
        case startedAt = "started_at", finishedAt = "finished_at", result, exitCode = "exit_code"
        case outputSHA256 = "output_sha256", prevHash = "prev_hash", hash
    }

    public static let genesis = String(repeating: "0", count: 64)

    /// SHA-256 over the previous hash and every field but `hash`, in a fixed text form.
    public func computedHash() -> String {
        let fields = [prevHash, runId, checklist, step, String(stepIndex), operatorName, Timestamps.iso8601(startedAt),
                      Timestamps.iso8601(finishedAt), result, exitCode.map(String.init) ?? "", outputSHA256]
        return SHA256.hex(fields.map { "\($0.utf8.count):\($0)" }.joined(separator: "|"))
    }
}

/// Where the audit trail lives. Appends are chained: each record's `prevHash` is the hash of the one
/// before, so `verify` finds an edited, removed or reordered record.
public protocol AuditStore: AnyObject {
    var location: String { get }
    /// Fills in `prevHash` and `hash` and appends.
    func append(_ record: AuditRecord) throws -> AuditRecord
    func records() throws -> [AuditRecord]
    /// The number of records and last hash as recorded at append time (catches a removed last record).
    func head() throws -> (count: Int, hash: String)?
}

public struct AuditVerification: Codable, Sendable {
    public var passed: Bool
    public var records: Int
    public var problems: [String]
}

public enum AuditTrail {
    /// `--audit-db` / DRKIT_AUDIT_DB (PostgreSQL), else `--audit-file` / DRKIT_AUDIT_FILE, else
    /// `$XDG_DATA_HOME/drkit/audit.jsonl` (default `~/.local/share/drkit/audit.jsonl`).
    public static func open(database: String?, file: String?,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AuditStore {
        if let conninfo = database ?? environment["DRKIT_AUDIT_DB"], !conninfo.isEmpty {
            return try PostgresAuditStore(conninfo: conninfo)
        }
        if let path = file ?? environment["DRKIT_AUDIT_FILE"], !path.isEmpty {
            return try JSONLinesAuditStore(path: path)
        }
        let base = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.local/share")
        return try JSONLinesAuditStore(path: base + "/drkit/audit.jsonl")
    }

    public static func verify(_ store: AuditStore) throws -> AuditVerification {
        let records = try store.records()
        var problems: [String] = []
        var previous = AuditRecord.genesis
        for (index, record) in records.enumerated() {
            let position = "record \(index + 1) (run \(record.runId), step \(record.step))"
            if record.prevHash != previous {
                problems.append("\(position): does not follow the record before it (a record was removed, inserted or reordered)")
            }
            if record.computedHash() != record.hash {
                problems.append("\(position): its content does not match its hash (edited)")
            }
            previous = record.hash
        }
        if let head = try store.head() {
            if head.count != records.count {
                problems.append("the trail holds \(records.count) records but \(head.count) were written")
            } else if head.hash != (records.last?.hash ?? AuditRecord.genesis) {
                problems.append("the last record is not the one last written")
            }
        } else if !records.isEmpty {
            problems.append("the head marker is missing")
        }
        return AuditVerification(passed: problems.isEmpty, records: records.count, problems: problems)
    }
}

/// An append-only JSON-lines file, one record per line, with `<file>.head` holding the record count
/// and last hash. Appends hold an exclusive `flock`, so concurrent runs keep the chain intact.
public final class JSONLinesAuditStore: AuditStore {
    public let path: String
    public var location: String { path }
    var headPath: String { path + ".head" }

    public init(path: String) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw DRKitError(.usage, "cannot create audit directory \(directory): \(error.localizedDescription)")
            }
        }
    }

    public func append(_ record: AuditRecord) throws -> AuditRecord {
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw DRKitError(.usage, "cannot open audit file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        let existing = try records()
        var chained = record
        chained.prevHash = existing.last?.hash ?? AuditRecord.genesis
        chained.hash = chained.computedHash()
        let encoder = JSONCoding.encoder
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(chained)
        line.append(0x0A)
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else {
            throw DRKitError(.usage, "cannot append to audit file \(path): \(String(cString: strerror(errno)))")
        }
        let head = "\(existing.count + 1) \(chained.hash)\n"
        do { try head.write(toFile: headPath, atomically: true, encoding: .utf8) } catch {
            throw DRKitError(.usage, "cannot write \(headPath): \(error.localizedDescription)")
        }
        return chained
    }

    public func records() throws -> [AuditRecord] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DRKitError(.usage, "cannot read audit file \(path)")
        }
        return try text.split(separator: "\n").enumerated().map { index, line in
            do { return try JSONCoding.decoder.decode(AuditRecord.self, from: Data(line.utf8)) } catch {
                throw DRKitError(.checkFailed, "audit file \(path) line \(index + 1) is not a valid record")
            }
        }
    }

    public func head() throws -> (count: Int, hash: String)? {
        guard let text = try? String(contentsOfFile: headPath, encoding: .utf8) else { return nil }
        let parts = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard parts.count == 2, let count = Int(parts[0]) else { return nil }
        return (count, parts[1])
    }
}

/// `runbook_executions` in PostgreSQL, created on first use with a schema version; the chain head
/// lives in `drkit_audit_meta`. Appends lock the table so concurrent runs keep the chain intact.
public final class PostgresAuditStore: AuditStore {
    static let schemaVersion = 1
    let connection: Connection
    public let location: String

    public init(conninfo: String) throws {
        location = "PostgreSQL " + ((try? ConnectionOptions(conninfo).redacted) ?? "audit database") + " table runbook_executions"
        do {
            connection = try Connection(conninfo: conninfo)
            try connection.execute("SET client_min_messages = warning")
            try connection.execute("""
                CREATE TABLE IF NOT EXISTS drkit_audit_meta (key text PRIMARY KEY, value text NOT NULL);
                INSERT INTO drkit_audit_meta VALUES ('schema_version', '\(PostgresAuditStore.schemaVersion)') ON CONFLICT (key) DO NOTHING;
                CREATE TABLE IF NOT EXISTS runbook_executions (
                    id bigserial PRIMARY KEY,
                    run_id text NOT NULL,
                    checklist text NOT NULL,
                    step text NOT NULL,
                    step_index integer NOT NULL,
                    operator text NOT NULL,
                    started_at timestamptz NOT NULL,
                    finished_at timestamptz NOT NULL,
                    result text NOT NULL,
                    exit_code integer,
                    output_sha256 text NOT NULL,
                    prev_hash text NOT NULL,
                    hash text NOT NULL
                );
                CREATE INDEX IF NOT EXISTS runbook_executions_run_id ON runbook_executions (run_id);
                """)
            let version = Int(try connection.query("SELECT value FROM drkit_audit_meta WHERE key = 'schema_version'").scalar ?? "0") ?? 0
            guard version <= PostgresAuditStore.schemaVersion else {
                throw DRKitError(.usage, "audit database schema version \(version) is newer than this drkit understands")
            }
        } catch let error as DRKitError {
            throw error
        } catch {
            throw DRKitError.wrap(error, "audit database")
        }
    }

    public func append(_ record: AuditRecord) throws -> AuditRecord {
        do {
            try connection.execute("BEGIN")
            try connection.execute("LOCK TABLE runbook_executions IN EXCLUSIVE MODE")
            let last = try connection.query("SELECT hash FROM runbook_executions ORDER BY id DESC LIMIT 1").scalar
            var chained = record
            chained.prevHash = last ?? AuditRecord.genesis
            chained.hash = chained.computedHash()
            _ = try connection.query("""
                INSERT INTO runbook_executions (run_id, checklist, step, step_index, operator, started_at, finished_at, result,
                                                exit_code, output_sha256, prev_hash, hash)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                """, [chained.runId, chained.checklist, chained.step, String(chained.stepIndex), chained.operatorName,
                      Timestamps.iso8601(chained.startedAt), Timestamps.iso8601(chained.finishedAt), chained.result,
                      chained.exitCode.map(String.init), chained.outputSHA256, chained.prevHash, chained.hash])
            let count = try connection.query("SELECT count(*) FROM runbook_executions").scalar ?? "0"
            _ = try connection.query("""
                INSERT INTO drkit_audit_meta VALUES ('head', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
                """, ["\(count) \(chained.hash)"])
            try connection.execute("COMMIT")
            return chained
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw DRKitError.wrap(error, "writing the audit trail")
        }
    }

    public func records() throws -> [AuditRecord] {
        do {
            let rows = try connection.query("""
                SELECT run_id, checklist, step, step_index::text, operator,
                       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                       result, exit_code::text, output_sha256, prev_hash, hash
                FROM runbook_executions ORDER BY id
                """)
            return rows.rows.map { r in
                AuditRecord(runId: r[0]!, checklist: r[1]!, step: r[2]!, stepIndex: Int(r[3]!) ?? 0, operatorName: r[4]!,
                            startedAt: Timestamps.parse(r[5]!) ?? Date(timeIntervalSince1970: 0),
                            finishedAt: Timestamps.parse(r[6]!) ?? Date(timeIntervalSince1970: 0),
                            result: r[7]!, exitCode: r[8].flatMap { Int($0) }, outputSHA256: r[9]!, prevHash: r[10]!, hash: r[11]!)
            }
        } catch { throw DRKitError.wrap(error, "reading the audit trail") }
    }

    public func head() throws -> (count: Int, hash: String)? {
        guard let value = try? connection.query("SELECT value FROM drkit_audit_meta WHERE key = 'head'").scalar else { return nil }
        let parts = value.split(separator: " ")
        guard parts.count == 2, let count = Int(parts[0]) else { return nil }
        return (count, String(parts[1]))
    }
}
