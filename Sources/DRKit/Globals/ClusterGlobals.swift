import Archive
import PostgresClient
import Foundation
import Common

/// What a cluster holds outside any one database, and what pg_dump of a database leaves out: roles
/// (attributes, memberships, settings, optionally password hashes), tablespaces, and each database's
/// owner, privileges and settings. Stored as one JSON object in a backup (`--globals`); read from the
/// catalogs every user may read (`pg_roles`, not `pg_authid`), so it works on managed services too.
public struct ClusterGlobals: Codable, Equatable, Sendable {
    public struct Role: Codable, Equatable, Sendable {
        public var name: String
        public var superuser: Bool
        public var inherit: Bool
        public var createRole: Bool
        public var createDatabase: Bool
        public var login: Bool
        public var replication: Bool
        public var bypassRLS: Bool
        public var connectionLimit: Int
        public var validUntil: String?
        /// The SCRAM/MD5 hash, only with `--role-passwords` (read from pg_authid: superuser only).
        public var passwordHash: String?
        public var comment: String?
    }

    public struct Membership: Codable, Equatable, Sendable {
        public var role: String
        public var member: String
        public var adminOption: Bool
    }

    /// `ALTER ROLE ... [IN DATABASE ...] SET` and `ALTER DATABASE ... SET`: nil role means every role
    /// (a database setting), nil database means every database (a role setting).
    public struct Setting: Codable, Equatable, Sendable {
        public var role: String?
        public var database: String?
        /// `name=value` as PostgreSQL stores them.
        public var settings: [String]
    }

    public struct Tablespace: Codable, Equatable, Sendable {
        public var name: String
        public var owner: String
        public var location: String
        public var options: [String]
    }

    public struct Grant: Codable, Equatable, Sendable {
        /// "" is PUBLIC.
        public var grantee: String
        public var privilege: String
        public var grantable: Bool
    }

    public struct Database: Codable, Equatable, Sendable {
        public var name: String
        public var owner: String
        public var connectionLimit: Int
        /// nil: the default privileges (PUBLIC may connect and create temporary tables).
        public var grants: [Grant]?
    }

    public var roles: [Role] = []
    public var memberships: [Membership] = []
    public var settings: [Setting] = []
    public var tablespaces: [Tablespace] = []
    public var databases: [Database] = []
    /// Whether password hashes were carried; when false, restored LOGIN roles need a password set.
    public var rolePasswords = false
    /// What was left out and why, one line each (shown by backup and restore).
    public var omitted: [String] = []

    public init() {}

    /// Reads the globals through `connection` (any database of the cluster). `rolePasswords` needs a
    /// superuser: refused otherwise, since only pg_authid holds the hashes.
    public static func read(_ connection: Connection, rolePasswords: Bool) throws -> ClusterGlobals {
        var globals = ClusterGlobals()
        do {
            let me = try connection.query("SELECT current_user::text, rolsuper::text FROM pg_roles WHERE rolname = current_user").rows[0]
            let user = me[0] ?? "?", superuser = me[1] == "true"
            if rolePasswords && !superuser {
                throw DRKitError(.usage, "--role-passwords needs a superuser (only pg_authid holds password hashes); \(user) is not one. Leave it out: roles are carried without passwords")
            }
            let hashes: [String: String] = rolePasswords ? Dictionary(uniqueKeysWithValues: try connection.query(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL").rows.map { ($0[0]!, $0[1]!) }) : [:]
            globals.rolePasswords = rolePasswords
            globals.roles = try connection.query("""
                SELECT rolname, rolsuper::text, rolinherit::text, rolcreaterole::text, rolcreatedb::text, rolcanlogin::text,
                       rolreplication::text, rolbypassrls::text, rolconnlimit::text, rolvaliduntil::text, shobj_description(oid, 'pg_authid')
                FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname
                """).rows.map { row in
                Role(name: row[0]!, superuser: row[1] == "true", inherit: row[2] == "true", createRole: row[3] == "true",
                     createDatabase: row[4] == "true", login: row[5] == "true", replication: row[6] == "true", bypassRLS: row[7] == "true",
                     connectionLimit: Int(row[8] ?? "-1") ?? -1, validUntil: row[9], passwordHash: hashes[row[0]!], comment: row[10])
            }
            globals.memberships = try connection.query("""
                SELECT r.rolname, m.rolname, a.admin_option::text FROM pg_auth_members a
                JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
                WHERE m.rolname !~ '^pg_' ORDER BY 1, 2
                """).rows.map { Membership(role: $0[0]!, member: $0[1]!, adminOption: $0[2] == "true") }
            globals.settings = try connection.query("""
                SELECT r.rolname, d.datname, array_to_json(s.setconfig)::text FROM pg_db_role_setting s
                LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
                WHERE (s.setrole = 0 OR r.rolname IS NOT NULL) AND (s.setdatabase = 0 OR d.datname IS NOT NULL) ORDER BY 1, 2
                """).rows.map { Setting(role: $0[0], database: $0[1], settings: decodeArray($0[2])) }
            globals.tablespaces = try connection.query("""
                SELECT spcname, pg_get_userbyid(spcowner), pg_tablespace_location(oid), COALESCE(array_to_json(spcoptions)::text, '[]')
                FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1
                """).rows.map { Tablespace(name: $0[0]!, owner: $0[1]!, location: $0[2] ?? "", options: decodeArray($0[3])) }
            globals.databases = try connection.query("""
                SELECT datname, pg_get_userbyid(datdba), datconnlimit::text,
                       (SELECT json_agg(json_build_array(CASE WHEN e.grantee = 0 THEN '' ELSE pg_get_userbyid(e.grantee) END,
                                                         e.privilege_type, e.is_grantable) ORDER BY 1)
                        FROM aclexplode(datacl) e)::text
                FROM pg_database WHERE NOT datistemplate ORDER BY 1
                """).rows.map { row in
                Database(name: row[0]!, owner: row[1]!, connectionLimit: Int(row[2] ?? "-1") ?? -1,
                         grants: row[3].flatMap { try? JSONDecoder().decode([[JSONScalar]].self, from: Data($0.utf8)) }?.map {
                             Grant(grantee: $0[0].text, privilege: $0[1].text, grantable: $0[2].flag)
                         } ?? (row[3] == nil ? nil : []))
            }
            if !rolePasswords && globals.roles.contains(where: \.login) {
                globals.omitted.append("role passwords are not carried (give --role-passwords, as a superuser, to carry their hashes): set them after a restore with ALTER ROLE ... PASSWORD")
            }
            if !superuser {
                globals.omitted.append("\(user) is not a superuser (a managed service?): roles are read from pg_roles, without passwords; superuser and replication roles may not be creatable on restore")
            }
        } catch let error as DRKitError {
            throw error
        } catch {
            throw DRKitError.wrap(error, "reading roles and other globals")
        }
        return globals
    }

    private static func decodeArray(_ json: String?) -> [String] {
        guard let json else { return [] }
        return (try? JSONDecoder().decode([String].self, from: Data(json.utf8))) ?? []
    }

    public var encoded: [UInt8] {
        get throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return [UInt8](try encoder.encode(self))
        }
    }

    /// A backup's globals object, hash-checked and decrypted like any object.
    static func read(_ record: ObjectRecord, from objects: BackupObjects) throws -> ClusterGlobals {
        try decode(try objects.contents(of: record))
    }

    public static func decode(_ bytes: [UInt8]) throws -> ClusterGlobals {
        do { return try JSONDecoder().decode(ClusterGlobals.self, from: Data(bytes)) } catch {
            throw DRKitError(.integrity, "the backup's globals object is not valid: \(error)")
        }
    }
}

/// A string or boolean inside a JSON array from `json_build_array`.
private enum JSONScalar: Decodable {
    case text(String), flag(Bool)

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) { self = .flag(value) } else { self = .text(try container.decode(String.self)) }
    }

    var text: String { if case .text(let value) = self { return value } else { return "" } }
    var flag: Bool { if case .flag(let value) = self { return value } else { return false } }
}
