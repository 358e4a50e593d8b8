import PostgresClient
import Foundation
import Common

/// What `drkit stream` needs of the source database, checked before anything is created there:
/// wal_level, a replica identity on every table, and the names of the slot and publication.
struct StreamSource {
    let connection: Connection
    let database: String
    let systemIdentifier: String
    let serverVersion: String
    let serverVersionNum: Int
    let databaseOid: String?
    let redacted: String

    init(conninfo: String) throws {
        redacted = (try? ConnectionOptions(conninfo).redacted) ?? "the database"
        do { connection = try Connection(conninfo: conninfo) } catch { throw DRKitError.wrap(error, "cannot connect to \(redacted)") }
        let row = try connection.query("""
            SELECT current_database(), \(Catalog.systemIdentifierExpression), current_setting('server_version'),
                   current_setting('server_version_num'), (SELECT oid::text FROM pg_database WHERE datname = current_database())
            """).rows[0]
        database = row[0] ?? ""
        systemIdentifier = row[1] ?? ""
        serverVersion = row[2] ?? ""
        serverVersionNum = Int(row[3] ?? "") ?? 0
        databaseOid = row[4]
    }

    /// `drkit_<database>`, lowercased, with anything but letters, digits and _ replaced, and a hash
    /// suffix when that changed the name (two databases must not share a slot).
    static func objectName(for database: String) -> String {
        let cleaned = String(database.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? $0 : "_" })
        let exact = cleaned == database
        let suffix = exact ? "" : "_" + String(Hex.encode(SHA256.hash(Array(database.utf8))).prefix(8))
        return "drkit_" + String(cleaned.prefix(63 - 6 - suffix.count)) + suffix
    }

    var slotName: String { Self.objectName(for: database) }
    var publicationName: String { Self.objectName(for: database) }

    /// Refuses (exit 2, nothing created) a server whose wal_level is not logical.
    func checkWalLevel() throws {
        let level = try connection.query("SELECT current_setting('wal_level')").scalar ?? ""
        guard level == "logical" else {
            throw DRKitError(.usage, "wal_level is \(level) on \(redacted): streaming changes needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart the server); nothing was created")
        }
        guard serverVersionNum >= 100000 else {
            throw DRKitError(.usage, "\(redacted) runs PostgreSQL \(serverVersion): streaming changes needs PostgreSQL 10 or newer (pgoutput)")
        }
    }

    /// Tables whose UPDATE and DELETE would fail once they are in a publication (no primary key and no
    /// replica identity). Those in `fullIdentity` get REPLICA IDENTITY FULL; any other is refused,
    /// before the slot or the publication exist.
    func ensureReplicaIdentity(fullIdentity: [String]) throws -> [String] {
        let rows = try connection.query("""
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND c.relpersistence = 'p'
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
              AND (c.relreplident = 'n'
                   OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
                   OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
            ORDER BY 1, 2
            """).rows.map { (schema: $0[0]!, name: $0[1]!) }
        func matches(_ pattern: String, _ table: (schema: String, name: String)) -> Bool {
            pattern == "\(table.schema).\(table.name)" || (!pattern.contains(".") && table.schema == "public" && pattern == table.name)
        }
        for pattern in fullIdentity where !rows.contains(where: { matches(pattern, $0) }) {
            let exists = try connection.query("SELECT to_regclass($1) IS NOT NULL", [pattern]).scalar == "t"
            if !exists { throw DRKitError(.usage, "--replica-identity-full \(pattern): no such table in \(database)") }
        }
        let refused = rows.filter { table in !fullIdentity.contains { matches($0, table) } }
        guard refused.isEmpty else {
            let names = refused.map { "\($0.schema).\($0.name)" }
            let shown = names.prefix(10).joined(separator: ", ") + (names.count > 10 ? " and \(names.count - 10) more" : "")
            throw DRKitError(.usage, "\(names.count) table(s) of \(database) have no primary key or replica identity (\(shown)): once published, their UPDATE and DELETE would fail on the source. Add a primary key, or pass --replica-identity-full TABLE for each (drkit then sets REPLICA IDENTITY FULL: every UPDATE and DELETE logs the whole old row); nothing was created")
        }
        var changed: [String] = []
        for table in rows {
            try connection.execute("ALTER TABLE \(Connection.qualified(table.schema, table.name)) REPLICA IDENTITY FULL")
            changed.append("\(table.schema).\(table.name)")
        }
        return changed
    }

    /// `max_slot_wal_keep_size = -1` lets a stopped stream keep WAL until the disk fills.
    func walRetentionWarning() throws -> String? {
        guard serverVersionNum >= 130000, try connection.query("SELECT current_setting('max_slot_wal_keep_size')").scalar == "-1" else { return nil }
        return "max_slot_wal_keep_size is unlimited on \(redacted): while this stream is stopped its slot keeps every WAL file (watch drkit_stream_slot_retained_bytes; `drkit stream drop` removes the slot)"
    }

    /// The schema's objects now, keyed by kind and OID (name and definition, hashed), and the server's
    /// clock: what the stream compares between two looks to see DDL that writes no row (a DROP, an
    /// empty new table, an ALTER before any write, a new index, view, function, schema or type), which
    /// pgoutput never reports.
    func catalogDefinitions() throws -> (serverTime: Int64, tables: [String: (name: String, signature: String)]) {
        let system = "NOT IN ('pg_catalog', 'information_schema', '\(SchemaCapture.schema)') AND n.nspname NOT LIKE 'pg\\_%'"
        let rows = try connection.query("""
            SELECT clock_timestamp()::text, 'r' || c.oid, n.nspname || '.' || c.relname,
                   md5(c.relkind::text || '|' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, ',' ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                       || '|' || CASE WHEN c.relkind IN ('v', 'm') THEN coalesce(pg_get_viewdef(c.oid), '') WHEN c.relkind IN ('i', 'I') THEN coalesce(pg_get_indexdef(c.oid), '') ELSE '' END
                       || '|' || coalesce((SELECT string_agg(co.conname || ' ' || pg_get_constraintdef(co.oid), ',' ORDER BY co.conname) FROM pg_constraint co WHERE co.conrelid = c.oid), '')
                       || '|' || coalesce(pg_get_expr(c.relpartbound, c.oid), ''))
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'i', 'I', 'S', 'f') AND c.relpersistence = 'p' AND n.nspname \(system)
            UNION ALL
            SELECT NULL, 'f' || p.oid, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                   md5(coalesce(p.prosrc, '') || '|' || p.prorettype::text || '|' || p.provolatile::text || '|' || coalesce(array_to_string(p.proconfig, ','), ''))
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname \(system)
            UNION ALL
            SELECT NULL, 'n' || n.oid, n.nspname, '' FROM pg_namespace n WHERE n.nspname \(system)
            UNION ALL
            SELECT NULL, 't' || t.oid, n.nspname || '.' || t.typname,
                   md5(t.typtype::text || '|' || format_type(t.typbasetype, t.typtypmod) || '|' || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), ''))
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'd') AND n.nspname \(system)
            UNION ALL SELECT clock_timestamp()::text, NULL, NULL, NULL
            """).rows
        var objects: [String: (name: String, signature: String)] = [:]
        var time: Int64?
        for row in rows {
            if time == nil, let text = row[0] { time = CommitTime.parse(text) }
            if let key = row[1], let name = row[2], let signature = row[3] { objects[key] = (name, signature) }
        }
        guard let time else { throw DRKitError(.database, "the server's clock could not be read") }
        return (time, objects)
    }

    /// What logical replication does not carry, said before streaming starts.
    func notArchived() throws -> [String] {
        var notes: [String] = []
        let largeObjects = Int(try connection.query("SELECT count(*) FROM pg_largeobject_metadata").scalar ?? "0") ?? 0
        if largeObjects > 0 {
            notes.append("\(database) has \(largeObjects) large object(s): logical replication does not carry them, so changes to them after a base backup are not archived (base backups still hold them)")
        }
        let unlogged = try connection.query("""
            SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' ORDER BY 1
            """).rows.compactMap { $0[0] }
        if !unlogged.isEmpty {
            notes.append("unlogged tables are not streamed (\(unlogged.prefix(5).joined(separator: ", "))\(unlogged.count > 5 ? " and \(unlogged.count - 5) more" : "")): a point-in-time restore has them as the base backup holds them")
        }
        return notes
    }

    enum SchemaCaptureState: Equatable {
        case installed, present
        /// Why it could not be installed.
        case unavailable(String)
    }

    /// drkit's event triggers that put each DDL command in the change stream (`SchemaCapture`):
    /// kept when present, created when this role may (a superuser), else the reason why not.
    func ensureSchemaCapture() throws -> SchemaCaptureState {
        if try schemaCaptureIsLive() { return .present }
        let superuser = try connection.query("SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = current_user").scalar == "true"
        let role = try connection.query("SELECT current_user::text").scalar ?? "this role"
        guard superuser else {
            return .unavailable("creating the event triggers that capture schema changes needs a superuser, and \(role) is not one")
        }
        guard serverVersionNum >= 140000 else {
            return .unavailable("PostgreSQL \(serverVersion) cannot send logical messages through pgoutput (14 or newer can)")
        }
        // A half-made capture (an earlier run stopped in the middle, someone dropped one trigger) is made whole.
        try connection.execute(SchemaCapture.dropSQL)
        do { try connection.execute(SchemaCapture.installSQL) } catch {
            _ = try? connection.execute("ROLLBACK")
            return .unavailable("creating the event triggers that capture schema changes failed: \(DRKitError.wrap(error).message)")
        }
        return .installed
    }

    func schemaCaptureIsLive() throws -> Bool {
        try connection.query(SchemaCapture.liveSQL).scalar == "t"
    }

    func ensurePublication() throws -> Bool {
        if try connection.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publicationName]).count > 0 { return false }
        let options = serverVersionNum >= 130000 ? " WITH (publish_via_partition_root = true)" : ""
        do { try connection.execute("CREATE PUBLICATION \(Connection.quoteIdentifier(publicationName)) FOR ALL TABLES\(options)") } catch {
            throw DRKitError.wrap(error, "creating publication \(publicationName) (FOR ALL TABLES needs a superuser)")
        }
        return true
    }

    struct SlotState {
        var confirmedFlush: LSN?
        var active: Bool
        var walStatus: String?
    }

    func slot() throws -> SlotState? {
        let columns = serverVersionNum >= 130000 ? "wal_status" : "NULL::text"
        let rows = try connection.query("""
            SELECT confirmed_flush_lsn::text, active::text, \(columns) FROM pg_replication_slots WHERE slot_name = $1
            """, [slotName]).rows
        guard let row = rows.first else { return nil }
        return SlotState(confirmedFlush: row[0].flatMap(LSN.init), active: row[1] == "true", walStatus: row[2])
    }

    /// Bytes of WAL the slot keeps on the server.
    func retainedBytes() throws -> Int64? {
        try connection.query("""
            SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text FROM pg_replication_slots WHERE slot_name = $1
            """, [slotName]).scalar.flatMap { Int64($0) }
    }

    /// Every sequence's value now (sequences are not replicated).
    func sequenceValues() throws -> [SequenceValue] {
        try connection.query("""
            SELECT schemaname::text, sequencename::text, last_value::text FROM pg_sequences WHERE last_value IS NOT NULL ORDER BY 1, 2
            """).rows.map { SequenceValue(schema: $0[0]!, name: $0[1]!, lastValue: $0[2]!) }
    }

    /// `drkit stream drop`: the slot (which frees the WAL it keeps), the publication and the capture.
    func drop() throws -> [String] {
        var dropped: [String] = []
        if let state = try slot() {
            guard !state.active else {
                throw DRKitError(.refused, "slot \(slotName) is in use by a running stream: stop `drkit stream` first")
            }
            try connection.query("SELECT pg_drop_replication_slot($1)", [slotName])
            dropped.append("replication slot \(slotName)")
        }
        if try connection.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publicationName]).count > 0 {
            try connection.execute("DROP PUBLICATION \(Connection.quoteIdentifier(publicationName))")
            dropped.append("publication \(publicationName)")
        }
        if try connection.query("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", [SchemaCapture.schema]).count > 0 {
            try connection.execute(SchemaCapture.dropSQL)
            dropped.append("the schema-change capture (event triggers \(SchemaCapture.triggers.joined(separator: ", ")), schema \(SchemaCapture.schema))")
        }
        return dropped
    }
}

/// Source-side maintenance a stream leaves behind.
public enum StreamMaintenance {
    /// `drkit stream drop`: the slot, the publication and the schema-change capture; returns what was dropped.
    public static func drop(conninfo: String) throws -> [String] {
        let source = try StreamSource(conninfo: conninfo)
        do { return try source.drop() } catch { throw DRKitError.wrap(error, "dropping the stream of \(source.database)") }
    }
}
