import Archive
import PostgresClient
import Common

/// What a restore checks about the target server before it creates anything: a major version at
/// least the source's (pg_dump's DDL for a newer server may use what an older one lacks, and would
/// fail midway), and every extension the backup's database had.
enum ServerCompatibility {
    struct Server {
        var version: String
        var versionNum: Int
        var major: Int { versionNum / 10000 }
        /// "15.18" of "15.18 (Debian 15.18-0+deb12u1)".
        var shortVersion: String { ServerCompatibility.short(version) }
        var availableExtensions: Set<String>
    }

    static func inspect(_ connection: Connection) throws -> Server {
        do {
            let row = try connection.query("SELECT current_setting('server_version'), current_setting('server_version_num')").rows[0]
            let extensions = try connection.query("SELECT name::text FROM pg_available_extensions").rows.compactMap { $0[0] }
            return Server(version: row[0] ?? "?", versionNum: Int(row[1] ?? "") ?? 0, availableExtensions: Set(extensions))
        } catch { throw DRKitError.wrap(error, "inspecting the target server") }
    }

    /// Refuses (exit 6) a target older than the source unless `allowOlderServer`, and a target that
    /// lacks an extension of the backup, naming the package to install.
    static func check(_ server: Server, source: SourceRecord, extensions: [ExtensionRecord]?, allowOlderServer: Bool) throws {
        let sourceMajor = source.serverVersionNum / 10000
        if server.major < sourceMajor && !allowOlderServer {
            throw DRKitError(.refused, "the backup comes from PostgreSQL \(short(source.serverVersion)) and the target server runs PostgreSQL \(server.shortVersion), an older major version: its DDL may use features \(server.major) lacks and would fail midway. Nothing was created; restore into PostgreSQL \(sourceMajor) or newer, or pass --allow-older-server to try anyway")
        }
        let missing = (extensions ?? []).filter { !server.availableExtensions.contains($0.name) }
        guard missing.isEmpty else {
            let names = missing.map { "\($0.name) (\($0.version) in the backup)" }.joined(separator: ", ")
            let packages = missing.map { package(for: $0.name, major: server.major) }.joined(separator: ", ")
            throw DRKitError(.refused, "the target server (PostgreSQL \(server.shortVersion)) lacks the extension\(missing.count == 1 ? "" : "s") \(names) that the backup's database uses. Nothing was created; install \(missing.count == 1 ? "its package" : "their packages") on the target server (Debian/Ubuntu: \(packages)) and run the restore again")
        }
    }

    static func short(_ version: String) -> String { version.split(separator: " ").first.map(String.init) ?? "?" }

    /// The Debian/Ubuntu (apt.postgresql.org) package that provides an extension. PostgreSQL's own
    /// contrib modules ship in the server package itself.
    static func package(for extensionName: String, major: Int) -> String {
        switch extensionName {
        case "vector": return "postgresql-\(major)-pgvector"
        case "postgis", "postgis_topology", "postgis_raster", "postgis_tiger_geocoder", "address_standardizer": return "postgresql-\(major)-postgis-3"
        case "timescaledb": return "timescaledb-2-postgresql-\(major) (from Timescale's repository)"
        case _ where contrib.contains(extensionName): return "postgresql-\(major) (contrib, part of the server package)"
        default: return "postgresql-\(major)-\(extensionName.replacingOccurrences(of: "_", with: "-"))"
        }
    }

    static let contrib: Set<String> = [
        "adminpack", "amcheck", "autoinc", "bloom", "btree_gin", "btree_gist", "citext", "cube", "dblink", "dict_int", "dict_xsyn",
        "earthdistance", "file_fdw", "fuzzystrmatch", "hstore", "insert_username", "intagg", "intarray", "isn", "lo", "ltree",
        "moddatetime", "old_snapshot", "pageinspect", "pg_buffercache", "pg_freespacemap", "pg_prewarm", "pg_stat_statements",
        "pg_surgery", "pg_trgm", "pg_visibility", "pg_walinspect", "pgcrypto", "pgrowlocks", "pgstattuple", "postgres_fdw",
        "refint", "seg", "sslinfo", "tablefunc", "tcn", "tsm_system_rows", "tsm_system_time", "unaccent", "uuid-ossp", "xml2",
    ]
}
