import Foundation
import PostgresClient
import Common

/// What must be equal between a source database and its restore.
public enum DatabaseFingerprint {
    /// md5 of every user table's (and populated materialized view's) rows, sorted; keyed by schema.name.
    public static func contentHashes(_ conninfo: String) throws -> [String: String] {
        let connection = try Connection(conninfo: conninfo)
        let relations = try connection.query("""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'm') AND c.relispopulated AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname !~ '^pg_'
            """)
        var hashes: [String: String] = [:]
        for row in relations.rows {
            let name = Connection.qualified(row[0]!, row[1]!)
            let hash = try connection.query("""
                SELECT count(*)::text || ':' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM ONLY \(name) t
                """).scalar
            hashes["\(row[0]!).\(row[1]!)"] = hash
        }
        return hashes
    }

    public static func sequences(_ conninfo: String) throws -> [String: String] {
        let connection = try Connection(conninfo: conninfo)
        var out: [String: String] = [:]
        for row in try connection.query("SELECT schemaname, sequencename, coalesce(last_value::text, 'unset') FROM pg_sequences").rows {
            out["\(row[0]!).\(row[1]!)"] = row[2]
        }
        return out
    }

    /// `pg_dump --schema-only` without the lines that differ between runs of the same schema, and
    /// without drkit's schema-change capture (schema `drkit_capture` and its event triggers), which a
    /// streamed source has and drkit deliberately never restores.
    public static func normalizedSchema(database: String, conninfo: String? = nil) throws -> String {
        // The matrix run against PostgreSQL 18 names its pg_dump in DRKIT_PG_DUMP.
        let configured = ProcessInfo.processInfo.environment["DRKIT_PG_DUMP"].flatMap { $0.isEmpty ? nil : $0 }
        let pgDump = configured ?? ["/usr/lib/postgresql/15/bin/pg_dump", "/usr/bin/pg_dump"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "pg_dump"
        let result = try Command.run(pgDump, ["--schema-only", "--exclude-schema=drkit_capture", "--no-password", "--dbname=" + (try conninfo ?? TestServices.postgres(database: database))],
                                     environment: [:])
        guard result.status == 0 else { throw TestServices.Missing(description: "pg_dump failed: \(result.stderr)") }
        let captureTriggers = try NSRegularExpression(pattern: "--\n-- Name: drkit_capture_[^\n]*; Type: EVENT TRIGGER;[^\n]*\n--\n(?:(?!--\n)[^\n]*\n)*")
        let text = captureTriggers.stringByReplacingMatches(in: result.stdout, range: NSRange(result.stdout.startIndex..., in: result.stdout), withTemplate: "")
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") && !$0.hasPrefix("-- Dumped") }
            .joined(separator: "\n")
    }
}

/// The fixture database, created once per test run.
public enum SharedFixture {
    private static let state = Locked<Result<String, Error>?>(nil)

    public static func database() throws -> String {
        if let existing = state.current { return try existing.get() }
        let result = Result { () -> String in
            let name = try TestServices.createDatabase("drkit_fixture")
            let connection = try Connection(conninfo: try TestServices.postgres(database: name))
            try connection.execute(Fixture.sql)
            return name
        }
        state.withLock { $0 = result }
        return try result.get()
    }
}
