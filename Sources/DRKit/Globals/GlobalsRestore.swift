import PostgresClient
import Foundation
import Common

/// What restoring globals did, one line per role or tablespace, for the operator and the evidence.
public struct GlobalsReport: Codable, Equatable, Sendable {
    public struct Line: Codable, Equatable, Sendable {
        /// "role", "membership", "setting", "tablespace" or "database"
        public var kind: String
        public var name: String
        /// "created", "exists" (left alone), "applied", "skipped" (what the backup holds for a role that
        /// existed, not applied) or "failed"
        public var outcome: String
        public var detail: String?
    }

    public var lines: [Line] = []
    /// Carried over from the backup: what it left out.
    public var omitted: [String] = []

    public var failed: [Line] { lines.filter { $0.outcome == "failed" } }

    mutating func add(_ kind: String, _ name: String, _ outcome: String, _ detail: String? = nil) {
        lines.append(Line(kind: kind, name: name, outcome: outcome, detail: detail))
    }
}

/// Creates the roles and tablespaces a backup's globals name that the target cluster lacks, and
/// never alters one that exists. Memberships and role settings are added for the roles it created;
/// those of roles that existed are reported as skipped, never applied silently or dropped silently.
/// A statement the target refuses (a superuser role on a managed service, a tablespace directory
/// that does not exist there) is reported and the rest goes on: the schema restore that follows
/// names whatever is still missing.
enum GlobalsRestore {
    static func applyCluster(_ globals: ClusterGlobals, on connection: Connection) throws -> GlobalsReport {
        var report = GlobalsReport(omitted: globals.omitted)
        let existing = Set(try connection.query("SELECT rolname FROM pg_roles").rows.compactMap { $0[0] })
        var created = Set<String>()
        for role in globals.roles {
            if existing.contains(role.name) {
                report.add("role", role.name, "exists", "left alone")
                continue
            }
            do {
                try connection.execute(createRoleStatement(role))
                if let comment = role.comment {
                    try connection.execute("COMMENT ON ROLE \(Connection.quoteIdentifier(role.name)) IS \(Connection.quoteLiteral(comment))")
                }
                created.insert(role.name)
                report.add("role", role.name, "created", role.login && role.passwordHash == nil ? "LOGIN without a password: set one" : nil)
            } catch {
                report.add("role", role.name, "failed", DRKitError.wrap(error).message)
            }
        }
        let present = existing.union(created)
        let members = Set(try connection.query("""
            SELECT r.rolname || '\u{1}' || m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
            """).rows.compactMap { $0[0] })
        for membership in globals.memberships {
            let name = "\(membership.member) in \(membership.role)"
            guard created.contains(membership.role) || created.contains(membership.member) else {
                // Both roles existed: they are left as they are, and what differs is said.
                if !members.contains(membership.role + "\u{1}" + membership.member) {
                    report.add("membership", name, "skipped", "both roles existed: not granted; GRANT \(Connection.quoteIdentifier(membership.role)) TO \(Connection.quoteIdentifier(membership.member)) if it should hold")
                }
                continue
            }
            guard present.contains(membership.role), present.contains(membership.member) else {
                report.add("membership", name, "failed", "a role is missing")
                continue
            }
            if members.contains(membership.role + "\u{1}" + membership.member) { continue }
            do {
                try connection.execute("GRANT \(Connection.quoteIdentifier(membership.role)) TO \(Connection.quoteIdentifier(membership.member))\(membership.adminOption ? " WITH ADMIN OPTION" : "")")
                report.add("membership", name, "created")
            } catch {
                report.add("membership", name, "failed", DRKitError.wrap(error).message)
            }
        }
        for setting in globals.settings where setting.database == nil {
            guard let role = setting.role else { continue }
            guard created.contains(role) else {
                for entry in setting.settings {
                    report.add("setting", role, "skipped", "\(entry): the role existed and is left as it is")
                }
                continue
            }
            apply(setting, to: "ALTER ROLE \(Connection.quoteIdentifier(role))", name: role, on: connection, report: &report)
        }
        let tablespaces = Set(try connection.query("SELECT spcname FROM pg_tablespace").rows.compactMap { $0[0] })
        for tablespace in globals.tablespaces {
            if tablespaces.contains(tablespace.name) {
                report.add("tablespace", tablespace.name, "exists", "left alone")
                continue
            }
            do {
                let owner = present.contains(tablespace.owner) ? " OWNER \(Connection.quoteIdentifier(tablespace.owner))" : ""
                let options = tablespace.options.isEmpty ? "" : " WITH (\(tablespace.options.joined(separator: ", ")))"
                try connection.execute("CREATE TABLESPACE \(Connection.quoteIdentifier(tablespace.name))\(owner) LOCATION \(Connection.quoteLiteral(tablespace.location))\(options)")
                report.add("tablespace", tablespace.name, "created", tablespace.location)
            } catch {
                report.add("tablespace", tablespace.name, "failed", "\(DRKitError.wrap(error).message) (create \(tablespace.location) on the server, or restore without it)")
            }
        }
        return report
    }

    /// The restored database takes its source's owner, connection limit, privileges and settings
    /// (database-wide and per role), as `pg_dump --create` would have set them.
    static func applyDatabase(_ globals: ClusterGlobals, source: String, target: String, on connection: Connection, report: inout GlobalsReport) {
        let database = Connection.quoteIdentifier(target)
        if let properties = globals.databases.first(where: { $0.name == source }) {
            var statements = ["ALTER DATABASE \(database) OWNER TO \(Connection.quoteIdentifier(properties.owner))"]
            if properties.connectionLimit != -1 { statements.append("ALTER DATABASE \(database) CONNECTION LIMIT \(properties.connectionLimit)") }
            if let grants = properties.grants {
                statements.append("REVOKE ALL ON DATABASE \(database) FROM PUBLIC")
                statements += grants.filter { $0.grantee != properties.owner }.map { grant in
                    let grantee = grant.grantee.isEmpty ? "PUBLIC" : Connection.quoteIdentifier(grant.grantee)
                    return "GRANT \(grant.privilege) ON DATABASE \(database) TO \(grantee)\(grant.grantable ? " WITH GRANT OPTION" : "")"
                }
            }
            do {
                for statement in statements { try connection.execute(statement) }
                report.add("database", target, "applied", "owner \(properties.owner)\(properties.grants.map { ", \($0.count) privilege(s)" } ?? "")")
            } catch {
                report.add("database", target, "failed", DRKitError.wrap(error).message)
            }
        }
        for setting in globals.settings where setting.database == source {
            let prefix = setting.role.map { "ALTER ROLE \(Connection.quoteIdentifier($0)) IN DATABASE \(database)" } ?? "ALTER DATABASE \(database)"
            apply(setting, to: prefix, name: setting.role.map { "\($0) in \(target)" } ?? target, on: connection, report: &report)
        }
    }

    private static func apply(_ setting: ClusterGlobals.Setting, to prefix: String, name: String, on connection: Connection, report: inout GlobalsReport) {
        for entry in setting.settings {
            do {
                try connection.execute("\(prefix) SET \(setStatementTail(entry))")
                report.add("setting", name, "applied", entry)
            } catch {
                report.add("setting", name, "failed", "\(entry): \(DRKitError.wrap(error).message)")
            }
        }
    }

    /// `name TO value` for a stored `name=value`. List settings are stored in SQL list form already
    /// (`"$user", public`), so they go in as they are; any other value is one literal.
    static func setStatementTail(_ entry: String) -> String {
        let name = String(entry.prefix { $0 != "=" })
        let value = String(entry.dropFirst(name.count + 1))
        let listSettings: Set<String> = ["search_path", "temp_tablespaces", "session_preload_libraries",
                                         "shared_preload_libraries", "local_preload_libraries"]
        return "\(Connection.quoteIdentifier(name)) TO " + (listSettings.contains(name.lowercased()) ? value : Connection.quoteLiteral(value))
    }

    static func createRoleStatement(_ role: ClusterGlobals.Role) -> String {
        var parts = [role.superuser ? "SUPERUSER" : "NOSUPERUSER", role.inherit ? "INHERIT" : "NOINHERIT",
                     role.createRole ? "CREATEROLE" : "NOCREATEROLE", role.createDatabase ? "CREATEDB" : "NOCREATEDB",
                     role.login ? "LOGIN" : "NOLOGIN", role.replication ? "REPLICATION" : "NOREPLICATION",
                     role.bypassRLS ? "BYPASSRLS" : "NOBYPASSRLS"]
        if role.connectionLimit != -1 { parts.append("CONNECTION LIMIT \(role.connectionLimit)") }
        if let validUntil = role.validUntil { parts.append("VALID UNTIL \(Connection.quoteLiteral(validUntil))") }
        if let hash = role.passwordHash { parts.append("PASSWORD \(Connection.quoteLiteral(hash))") }
        return "CREATE ROLE \(Connection.quoteIdentifier(role.name)) WITH " + parts.joined(separator: " ")
    }
}
