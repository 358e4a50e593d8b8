import Archive
import PostgresClient
import Common

/// Chooses and prepares the database a restore writes into, enforcing the safety rules:
/// never into a database with user tables unless `clean`, never into the backup's own source.
struct RestoreTarget: Sendable {
    let conninfo: String
    let database: String
    let redacted: String
    let maintenanceConninfo: String
    /// True when drkit created the database, so a failed restore may drop it again.
    private(set) var created = false
    /// `--into-schema`: the schema this restore created in an existing database (dropped again on failure).
    private(set) var createdSchema: String?
    /// The target server's `server_version_num`, known once prepared.
    private(set) var serverVersionNum = 0

    init(conninfo: String) throws {
        let options: ConnectionOptions
        do { options = try ConnectionOptions(conninfo) } catch { throw DRKitError(.usage, "--target: \(error)") }
        guard let database = options["dbname"], !database.isEmpty else {
            throw DRKitError(.usage, "--target must name a database (dbname=... or postgres://host/dbname)")
        }
        self.conninfo = conninfo
        self.database = database
        self.redacted = options.redacted
        var maintenance = options
        maintenance["dbname"] = "postgres"
        maintenanceConninfo = maintenance.conninfo
    }

    func connectMaintenance() throws -> Connection {
        do { return try Connection(conninfo: maintenanceConninfo) } catch {
            throw DRKitError.wrap(error, "cannot connect to the target server (\(redacted))")
        }
    }

    static func systemIdentifier(_ connection: Connection) -> String? {
        try? connection.query("SELECT \(Catalog.systemIdentifierExpression)").scalar
    }

    mutating func prepare(source: SourceRecord, encoding: String, clean: Bool, extensions: [ExtensionRecord]? = nil,
                          allowOlderServer: Bool = false) throws {
        let maintenance = try connectMaintenance()
        let server = try ServerCompatibility.inspect(maintenance)
        try ServerCompatibility.check(server, source: source, extensions: extensions, allowOlderServer: allowOlderServer)
        serverVersionNum = server.versionNum
        let targetSystem = RestoreTarget.systemIdentifier(maintenance)
        let sameServer = targetSystem != nil && targetSystem == source.systemIdentifier
        let unknownServer = targetSystem == nil || source.systemIdentifier == nil
        if database == source.database && (sameServer || unknownServer) {
            throw DRKitError(.refused, "refusing to restore into \(database): it is the database the backup came from (restore into a new scratch database instead)")
        }
        let existingOid: String?
        do { existingOid = try maintenance.query("SELECT oid::text FROM pg_database WHERE datname = $1", [database]).scalar } catch {
            throw DRKitError.wrap(error, "checking the target database")
        }
        let exists = existingOid != nil
        // By identity, not name: a renamed source is still the source (same cluster, same OID).
        if sameServer, let existingOid, existingOid == source.databaseOid {
            throw DRKitError(.refused, "refusing to restore into \(database): it is the database the backup came from (\(source.database), renamed; same cluster and OID \(existingOid)); restore into a new scratch database instead")
        }
        let quoted = Connection.quoteIdentifier(database)
        if exists {
            let userRelations: Int
            do {
                let target = try Connection(conninfo: conninfo)
                userRelations = Int(try target.query("""
                    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND \(Catalog.userRelationFilter)
                    """).scalar ?? "0") ?? 0
            } catch {
                throw DRKitError.wrap(error, "inspecting target database \(database)")
            }
            if userRelations == 0 { return }
            guard clean else {
                throw DRKitError(.refused, "target database \(database) is not empty (\(userRelations) user relations); restore into a new database, or pass --clean to drop and recreate it")
            }
            do { try maintenance.execute("DROP DATABASE \(quoted)") } catch {
                throw DRKitError.wrap(error, "--clean: dropping target database \(database)")
            }
        }
        do {
            try maintenance.execute("CREATE DATABASE \(quoted) TEMPLATE template0 ENCODING \(Connection.quoteLiteral(encoding))")
        } catch {
            throw DRKitError.wrap(error, "creating target database \(database)")
        }
        created = true
    }

    /// `--into-schema`: the database must exist and must not hold the schema; the restore creates it
    /// and writes nothing outside it. Restoring into the backup's own source is the point here (compare
    /// and copy rows back), so that rule does not apply: nothing existing is touched.
    mutating func prepareNewSchema(_ schema: String, source: SourceRecord, extensions: [ExtensionRecord]?, allowOlderServer: Bool) throws {
        let maintenance = try connectMaintenance()
        let server = try ServerCompatibility.inspect(maintenance)
        try ServerCompatibility.check(server, source: source, extensions: extensions, allowOlderServer: allowOlderServer)
        serverVersionNum = server.versionNum
        guard try maintenance.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]).count > 0 else {
            throw DRKitError(.usage, "--into-schema restores into an existing database, and \(database) does not exist")
        }
        let target: Connection
        do { target = try Connection(conninfo: conninfo) } catch { throw DRKitError.wrap(error, "cannot connect to \(redacted)") }
        if try target.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]).count > 0 {
            throw DRKitError(.refused, "schema \(schema) already exists in \(database); --into-schema creates a new schema (choose another name, or drop it first)")
        }
        do { try target.execute("CREATE SCHEMA \(Connection.quoteIdentifier(schema))") } catch {
            throw DRKitError.wrap(error, "creating schema \(schema) in \(database)")
        }
        createdSchema = schema
    }

    /// Drops what this restore created: the database, or with `--into-schema` the new schema
    /// (a failed restore leaves nothing half-written).
    func discard() -> Bool {
        if let createdSchema {
            let connection = try? Connection(conninfo: conninfo)
            return (try? connection?.execute("DROP SCHEMA IF EXISTS \(Connection.quoteIdentifier(createdSchema)) CASCADE")) != nil
        }
        guard created else { return false }
        return (try? drop(force: false)) != nil
    }

    /// Drops the target database if it exists; `force` also ends sessions still connected to it.
    func drop(force: Bool) throws {
        let maintenance = try connectMaintenance()
        do {
            try maintenance.execute("DROP DATABASE IF EXISTS \(Connection.quoteIdentifier(database))\(force ? " WITH (FORCE)" : "")")
        } catch {
            throw DRKitError.wrap(error, "dropping database \(database)")
        }
    }
}
