import XCTest
import Foundation
import TestSupport
import PostgresClient
@testable import DRKit

/// Whole-cluster disaster recovery: roles and other globals, every database in one run, and large
/// objects, rebuilt on the second (new, empty) cluster that scripts/test.sh starts.
final class ClusterTests: DRKitTestCase {
    private var prefix = ""
    private var roles: [String] { ["owner", "app", "reader"].map { "\(prefix)_\($0)" } }
    private var databases: [String] { ["shop", "crm"].map { "\(prefix)_\($0)" } }

    override func setUpWithError() throws {
        try super.setUpWithError()
        prefix = "ct\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDown() {
        super.tearDown()  // drops the test's scratch databases first: a role that owns objects cannot be dropped
        for conninfo in [try? TestServices.postgres(), try? TestServices.secondCluster()].compactMap({ $0 }) {
            guard let connection = try? Connection(conninfo: conninfo) else { continue }
            for database in databases { _ = try? connection.execute("DROP DATABASE IF EXISTS \(Connection.quoteIdentifier(database)) WITH (FORCE)") }
            for role in roles.reversed() { _ = try? connection.execute("DROP ROLE IF EXISTS \(Connection.quoteIdentifier(role))") }
        }
    }

    /// Roles (LOGIN/NOLOGIN, a membership with admin option, settings, a password), two databases with
    /// owners, grants, database privileges and settings, and large objects with an owner and an ACL.
    private func buildSourceCluster() throws {
        let (owner, app, reader) = (roles[0], roles[1], roles[2])
        let (shop, crm) = (databases[0], databases[1])
        let admin = try Connection(conninfo: try TestServices.postgres())
        try admin.execute("""
            CREATE ROLE \(owner) NOLOGIN;
            CREATE ROLE \(app) LOGIN PASSWORD 'app-secret-1' CONNECTION LIMIT 7;
            CREATE ROLE \(reader) LOGIN VALID UNTIL '2031-01-01 00:00:00+00';
            COMMENT ON ROLE \(reader) IS 'read-only analysts';
            GRANT \(app) TO \(reader) WITH ADMIN OPTION;
            ALTER ROLE \(reader) SET work_mem = '8MB';
            ALTER ROLE \(app) SET search_path = app, public;
            """)
        try admin.execute("CREATE DATABASE \(shop) OWNER \(owner)")
        try admin.execute("CREATE DATABASE \(crm)")
        try admin.execute("""
            REVOKE CONNECT ON DATABASE \(crm) FROM PUBLIC;
            GRANT CONNECT ON DATABASE \(crm) TO \(reader);
            ALTER DATABASE \(crm) SET default_transaction_isolation = 'repeatable read';
            """)
        try Connection(conninfo: try TestServices.postgres(database: shop)).execute("""
            CREATE SCHEMA app AUTHORIZATION \(owner);
            CREATE TYPE app.status AS ENUM ('new', 'paid');
            CREATE TABLE app.orders (id bigserial PRIMARY KEY, status app.status NOT NULL DEFAULT 'new', note text);
            ALTER TABLE app.orders OWNER TO \(owner);
            ALTER SEQUENCE app.orders_id_seq OWNER TO \(owner);
            GRANT USAGE ON SCHEMA app TO \(app), \(reader);
            GRANT SELECT, INSERT ON app.orders TO \(app);
            GRANT SELECT ON app.orders TO \(reader);
            INSERT INTO app.orders (status, note) SELECT CASE WHEN g % 2 = 0 THEN 'paid'::app.status ELSE 'new' END, 'order ' || g FROM generate_series(1, 500) g;
            CREATE TABLE app.attachments (id int PRIMARY KEY, body oid);
            ALTER TABLE app.attachments OWNER TO \(owner);
            SELECT lo_from_bytea(0, convert_to('attachment ' || g, 'UTF8')) FROM generate_series(1, 50) g;
            INSERT INTO app.attachments SELECT row_number() OVER (ORDER BY oid), oid FROM pg_largeobject_metadata;
            ALTER ROLE \(reader) IN DATABASE \(shop) SET statement_timeout = '30s';
            """)
        let shopConnection = try Connection(conninfo: try TestServices.postgres(database: shop))
        for oid in try shopConnection.query("SELECT oid::text FROM pg_largeobject_metadata ORDER BY oid LIMIT 5").rows.compactMap({ $0[0] }) {
            try shopConnection.execute("ALTER LARGE OBJECT \(oid) OWNER TO \(owner); GRANT SELECT ON LARGE OBJECT \(oid) TO \(reader)")
        }
        try Connection(conninfo: try TestServices.postgres(database: crm)).execute("""
            CREATE TABLE contacts (id int PRIMARY KEY, name text NOT NULL);
            INSERT INTO contacts SELECT g, 'contact ' || g FROM generate_series(1, 200) g;
            GRANT SELECT ON contacts TO \(reader);
            """)
    }

    /// An ACL column as its items sorted: the same privileges, whatever order the grants ran in.
    private static func acl(_ column: String) -> String {
        "coalesce((SELECT string_agg(item::text, ',' ORDER BY item::text) FROM unnest(\(column)) item), 'default')"
    }

    /// Everything about the test's roles and databases that a rebuilt cluster must reproduce.
    private func clusterFingerprint(_ conninfo: (String) throws -> String, databases: [String]? = nil) throws -> [String] {
        let admin = try Connection(conninfo: try conninfo("postgres"))
        let pattern = Connection.quoteLiteral(prefix + "\\_%")
        var lines = try admin.query("""
            SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolconnlimit, rolvaliduntil,
                   shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname LIKE \(pattern) ORDER BY 1
            """).rows.map { "role " + $0.map { $0 ?? "NULL" }.joined(separator: "|") }
        lines += try admin.query("""
            SELECT r.rolname || ' has ' || m.rolname || ' admin ' || a.admin_option FROM pg_auth_members a
            JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE m.rolname LIKE \(pattern) ORDER BY 1
            """).rows.map { $0[0]! }
        lines += try admin.query("""
            SELECT coalesce(r.rolname, '-') || ' in ' || coalesce(d.datname, '-') || ': ' || array_to_string(s.setconfig, ',')
            FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
            WHERE r.rolname LIKE \(pattern) OR d.datname LIKE \(pattern) ORDER BY 1
            """).rows.map { $0[0]! }
        lines += try admin.query("""
            SELECT datname || ' owner ' || pg_get_userbyid(datdba) || ' acl ' || \(ClusterTests.acl("datacl"))
            FROM pg_database WHERE datname LIKE \(pattern) ORDER BY 1
            """).rows.map { $0[0]! }
        for database in databases ?? self.databases {
            let connection = try Connection(conninfo: try conninfo(database))
            lines += try connection.query("""
                SELECT n.nspname || '.' || c.relname || ' owner ' || pg_get_userbyid(c.relowner) || ' acl ' || \(ClusterTests.acl("c.relacl"))
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' ORDER BY 1
                """).rows.map { "\(database): \($0[0]!)" }
            lines += try connection.query("""
                SELECT m.oid || ' ' || pg_get_userbyid(m.lomowner) || ' ' || \(ClusterTests.acl("m.lomacl")) || ' ' || md5(lo_get(m.oid))
                FROM pg_largeobject_metadata m ORDER BY m.oid
                """).rows.map { "\(database): large object \($0[0]!)" }
        }
        return lines
    }

    func testAllDatabasesRunRebuildsANewClusterWithRolesOwnersGrantsAndLargeObjects() throws {
        try buildSourceCluster()
        // Only this test's databases: every other one on the shared test server is excluded by name.
        let others = try Connection(conninfo: try TestServices.postgres()).query("SELECT datname FROM pg_database WHERE NOT datistemplate").rows
            .compactMap { $0[0] }.filter { !databases.contains($0) }
        let backup = try Command.drkit(["backup", "--all-databases", "--role-passwords", "--db", try TestServices.postgres(), "--repo", repo,
                                        "--key-file", keyFile, "--json"] + others.flatMap { ["--exclude-database", "\"\($0)\""] })
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])
        let run = try XCTUnwrap(report["run"] as? String)
        let backups = try XCTUnwrap(report["backups"] as? [[String: Any]])
        XCTAssertEqual(Set(backups.compactMap { $0["database"] as? String }), Set(databases))
        XCTAssertEqual(backups.first { $0["database"] as? String == databases[0] }?["largeObjects"] as? Int, 50)
        XCTAssertFalse(backup.stdout.contains("app-secret-1"), "no password in the output")

        let listed = try Command.drkit(["list", "--repo", repo, "--key-file", keyFile])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertEqual(listed.stdout.split(separator: "\n").filter { $0.contains(run) }.count, 2, listed.stdout)
        let verified = try Command.drkit(["verify", "latest", "--repo", repo, "--key-file", keyFile])
        XCTAssertEqual(verified.status, 0, verified.stdout + verified.stderr)

        // --jobs 4: the two databases restore side by side, two workers each.
        let restored = try Command.drkit(["restore", "--run", run, "--target-cluster", try TestServices.secondCluster(), "--repo", repo,
                                          "--key-file", keyFile, "--jobs", "4"])
        XCTAssertEqual(restored.status, 0, restored.stdout + restored.stderr)
        for role in roles { XCTAssertTrue(restored.stdout.contains("role \(role): created"), restored.stdout) }
        XCTAssertTrue(restored.stdout.contains("role postgres: exists (left alone)"), restored.stdout)

        XCTAssertEqual(try clusterFingerprint { try TestServices.secondCluster(database: $0) },
                       try clusterFingerprint { try TestServices.postgres(database: $0) })
        for database in databases {
            XCTAssertEqual(try DatabaseFingerprint.normalizedSchema(database: database, conninfo: try TestServices.secondCluster(database: database)),
                           try DatabaseFingerprint.normalizedSchema(database: database), "schema of \(database)")
            XCTAssertEqual(try DatabaseFingerprint.contentHashes(try TestServices.secondCluster(database: database)),
                           try DatabaseFingerprint.contentHashes(try TestServices.postgres(database: database)), "content of \(database)")
            XCTAssertEqual(try DatabaseFingerprint.sequences(try TestServices.secondCluster(database: database)),
                           try DatabaseFingerprint.sequences(try TestServices.postgres(database: database)), "sequences of \(database)")
        }
        // The password hash came along: the application role logs in to the new cluster with its password.
        var login = try ConnectionOptions(try TestServices.secondCluster(database: databases[0]))
        login["user"] = roles[1]
        login["password"] = "app-secret-1"
        XCTAssertEqual(try Connection(conninfo: login.conninfo).query("SELECT count(*) FROM app.orders").scalar, "500")

        // A second run into the now populated cluster is refused before anything changes...
        let again = try Command.drkit(["restore", "--run", run, "--target-cluster", try TestServices.secondCluster(), "--repo", repo, "--key-file", keyFile])
        assertFailure(again, exitCode: 6, mentions: "already holds")
        // ...and with --clean rebuilds the same databases, leaving the existing roles alone.
        let clean = try Command.drkit(["restore", "--run", run, "--target-cluster", try TestServices.secondCluster(), "--repo", repo,
                                       "--key-file", keyFile, "--clean"])
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        for role in roles { XCTAssertTrue(clean.stdout.contains("role \(role): exists (left alone)"), clean.stdout) }
        // What the backup holds for a role that existed is reported, not silently skipped.
        XCTAssertTrue(clean.stdout.contains("setting \(roles[2]): skipped (work_mem=8MB: the role existed and is left as it is)"), clean.stdout)
        XCTAssertEqual(try clusterFingerprint { try TestServices.secondCluster(database: $0) },
                       try clusterFingerprint { try TestServices.postgres(database: $0) })
    }

    /// A globals-only backup: listed apart as (globals), refused by a database restore with the way to
    /// apply it, and applied to the new cluster by `restore --globals-only`.
    func testGlobalsOnlyBackupRecreatesTheRolesOnANewCluster() throws {
        try buildSourceCluster()
        let backup = try Command.drkit(["backup", "--globals-only", "--role-passwords", "--db", try TestServices.postgres(), "--repo", repo,
                                        "--key-file", keyFile, "--json"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
        XCTAssertTrue(try Command.drkit(["list", "--repo", repo]).stdout.contains("(globals)"))
        XCTAssertEqual(try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile]).status, 0)
        assertFailure(try restore(id, into: scratchName("ct_globals_db"), extra: ["--key-file", keyFile]), exitCode: 2, mentions: "--globals-only")

        let applied = try Command.drkit(["restore", id, "--globals-only", "--target-cluster", try TestServices.secondCluster(), "--repo", repo,
                                         "--key-file", keyFile])
        XCTAssertEqual(applied.status, 0, applied.stdout + applied.stderr)
        for role in roles { XCTAssertTrue(applied.stdout.contains("role \(role): created"), applied.stdout) }
        let roleLines = { (conninfo: (String) throws -> String) throws -> [String] in
            try self.clusterFingerprint(conninfo, databases: []).filter { $0.hasPrefix("role ") || $0.contains(" has ") || $0.contains(" in -: ") }
        }
        XCTAssertEqual(try roleLines { try TestServices.secondCluster(database: $0) }, try roleLines { try TestServices.postgres(database: $0) })
    }

    /// A backup user that is not a superuser (a managed service) still carries the roles, says what it
    /// left out, and is refused password hashes with one clear line.
    func testGlobalsFromANonSuperuserAndRestoreWithGlobalsLeavesExistingRolesAlone() throws {
        try buildSourceCluster()
        let crm = databases[1]
        let admin = try Connection(conninfo: try TestServices.postgres())
        let operatorRole = "\(prefix)_operator"
        try admin.execute("CREATE ROLE \(operatorRole) LOGIN PASSWORD 'operator-pw'; GRANT pg_read_all_data TO \(operatorRole); GRANT CONNECT ON DATABASE \(crm) TO \(operatorRole)")
        defer { _ = try? admin.execute("REVOKE ALL ON DATABASE \(crm) FROM \(operatorRole); DROP ROLE IF EXISTS \(operatorRole)") }
        var options = try ConnectionOptions(try TestServices.postgres(database: crm))
        options["user"] = operatorRole
        options["password"] = "operator-pw"

        let refused = try Command.drkit(["backup", "--globals", "--role-passwords", "--db", options.conninfo, "--repo", repo, "--key-file", keyFile])
        assertFailure(refused, exitCode: 2, mentions: "needs a superuser")

        let withGlobals = try Command.drkit(["backup", "--globals", "--db", options.conninfo, "--repo", repo, "--key-file", keyFile])
        XCTAssertEqual(withGlobals.status, 0, withGlobals.stderr)
        XCTAssertTrue(withGlobals.stderr.contains("is not a superuser"), withGlobals.stderr)
        XCTAssertTrue(withGlobals.stderr.contains("role passwords are not carried"), withGlobals.stderr)
        XCTAssertFalse(withGlobals.stdout.contains("operator-pw") || withGlobals.stderr.contains("operator-pw"), "no password in the output")

        let target = scratchName("ct_globals")
        let restored = try Command.drkit(["restore", "latest", "--globals", "--repo", repo, "--key-file", keyFile, "--target", try conninfo(target)])
        XCTAssertEqual(restored.status, 0, restored.stdout + restored.stderr)
        for role in roles { XCTAssertTrue(restored.stdout.contains("role \(role): exists (left alone)"), restored.stdout) }
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT relacl::text FROM pg_class WHERE oid = 'contacts'::regclass", in: target),
                       try PostgresClientBridge.scalar("SELECT relacl::text FROM pg_class WHERE oid = 'contacts'::regclass", in: crm))
        let databaseACL = "SELECT \(ClusterTests.acl("datacl")) FROM pg_database WHERE datname = current_database()"
        XCTAssertEqual(try PostgresClientBridge.scalar(databaseACL, in: target), try PostgresClientBridge.scalar(databaseACL, in: crm))
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0", in: target),
                       "default_transaction_isolation=repeatable read")

        // A backup made without --globals cannot restore roles, and says so.
        let plain = try backup(databases[1])
        assertFailure(try restore(plain, into: scratchName("ct_noglobals"), extra: ["--globals", "--key-file", keyFile]),
                      exitCode: 2, mentions: "carries no roles")
    }

    /// 10,000 small and two 100 MB large objects (random bytes: incompressible) round-trip identically,
    /// contents, owners and ACLs; verify reads every one, and a damaged large object object is named.
    func testLargeObjectsRoundTripIdenticallyAndVerifyReadsThem() throws {
        let source = try newDatabase("ct_lo", sql: """
            SELECT lo_from_bytea(0, convert_to('small object ' || g, 'UTF8')) FROM generate_series(1, 10000) g;
            SELECT lo_from_bytea(0, ''::bytea);
            CREATE ROLE \(prefix)_owner NOLOGIN;
            """)
        let connection = try Connection(conninfo: try conninfo(source))
        for index in 0..<2 {
            let file = workDirectory.appendingPathComponent("big\(index).bin")
            let random = try XCTUnwrap(FileHandle(forReadingAtPath: "/dev/urandom"))
            try random.readData(ofLength: 100 << 20).write(to: file)
            try random.close()
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: workDirectory.path)
            let oid = try XCTUnwrap(connection.query("SELECT lo_import(\(Connection.quoteLiteral(file.path)))::text").scalar)
            try connection.execute("ALTER LARGE OBJECT \(oid) OWNER TO \(prefix)_owner; GRANT SELECT ON LARGE OBJECT \(oid) TO PUBLIC; COMMENT ON LARGE OBJECT \(oid) IS 'big \(index)'")
            try FileManager.default.removeItem(at: file)
        }
        let fingerprint = { (database: String) throws -> [String] in
            try Connection(conninfo: try self.conninfo(database)).query("""
                SELECT m.oid || ' ' || pg_get_userbyid(m.lomowner) || ' ' || coalesce(m.lomacl::text, '-') || ' '
                       || coalesce(obj_description(m.oid, 'pg_largeobject'), '-') || ' ' || md5(lo_get(m.oid))
                FROM pg_largeobject_metadata m ORDER BY m.oid
                """).rows.map { $0[0]! }
        }
        let id = try backup(source, extra: ["--split-size", "64"])
        let verified = try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile, "--json"])
        XCTAssertEqual(verified.status, 0, verified.stdout + verified.stderr)
        let manifestFile = try JSONSerialization.jsonObject(with: Data(contentsOf: workDirectory.appendingPathComponent("repo/\(id)/manifest.json"))) as? [String: Any]
        XCTAssertEqual(manifestFile?["formatVersion"] as? Int, 3, "a drkit that does not know large objects must refuse this backup")
        let objects = try objectPaths(id, under: "largeobjects")
        XCTAssertGreaterThanOrEqual(objects.count, 3, "each 100 MB object in its own object, the small ones together")

        let target = scratchName("ct_lo_restored")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(restored.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["largeObjects"] as? Int, 10_003)
        let expected = try fingerprint(source)
        XCTAssertEqual(expected.count, 10_003)
        XCTAssertEqual(try fingerprint(target), expected)
        // Parity compares large objects too: their count, and with --checksum their OIDs, owners and contents.
        let parity = try Command.drkit(["parity", "--source", try conninfo(source), "--target", try conninfo(target), "--checksum", "--json", "--csv", workDirectory.appendingPathComponent("rowcount.csv").path])
        XCTAssertEqual(parity.status, 0, parity.stdout + parity.stderr)
        XCTAssertTrue(parity.stdout.contains("pg_largeobject"), parity.stdout)
        XCTAssertTrue(try String(contentsOf: workDirectory.appendingPathComponent("rowcount.csv")).contains("pg_catalog,pg_largeobject,10003,10003,true"))
        try Connection(conninfo: try conninfo(target)).execute("SELECT lo_unlink(max(oid)) FROM pg_largeobject_metadata")
        let differs = try Command.drkit(["parity", "--source", try conninfo(source), "--target", try conninfo(target), "--checksum", "--csv", workDirectory.appendingPathComponent("rowcount.csv").path])
        XCTAssertEqual(differs.status, 1, differs.stdout + differs.stderr)
        XCTAssertTrue(differs.stdout.contains("pg_largeobject"), differs.stdout)

        // One flipped byte in a large object object: verify names it (exit 1), restore refuses it (exit 5).
        let damaged = objects[0]
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: damaged)
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: damaged))
        handle.seek(toFileOffset: 100)
        let byte = handle.readData(ofLength: 1)
        handle.seek(toFileOffset: 100)
        handle.write(Data([byte[0] ^ 0xFF]))
        try handle.close()
        let broken = try Command.drkit(["verify", id, "--repo", repo, "--key-file", keyFile])
        XCTAssertEqual(broken.status, 1, broken.stdout + broken.stderr)
        XCTAssertTrue((broken.stdout + broken.stderr).contains(URL(fileURLWithPath: damaged).lastPathComponent), broken.stdout + broken.stderr)
        let refusedTarget = scratchName("ct_lo_refused")
        assertFailure(try restore(id, into: refusedTarget, extra: ["--key-file", keyFile]), exitCode: 5, mentions: "largeobjects/")
        XCTAssertFalse(try TestServices.databaseExists(refusedTarget), "a failed restore drops what it created")
    }
}
