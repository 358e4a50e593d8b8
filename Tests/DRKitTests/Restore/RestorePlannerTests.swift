import XCTest
import Archive
@testable import DRKit

/// The restore's plan by value: load order, packs and the DDL that follows them, chunked tables,
/// index-first keys and foreign-key batching, with no server.
final class RestorePlannerTests: XCTestCase {
    private func object(_ name: String, size: Int64, plain: Int64, rows: Int64 = 10) -> ObjectRecord {
        ObjectRecord(name: name, size: size, sha256: String(repeating: "0", count: 64), plainBytes: plain, rows: rows)
    }

    private func table(_ name: String, plain: Int64, objects: [ObjectRecord], kind: String = "table") -> TableRecord {
        TableRecord(schema: "s", name: name, kind: kind, columns: ["id", "v"], rows: objects.reduce(0) { $0 + $1.rows }, plainBytes: plain, objects: objects)
    }

    private func entry(_ type: String, _ name: String, _ sql: String) -> String {
        "--\n-- Name: \(name); Type: \(type); Schema: s; Owner: o\n--\n\n\(sql)\n\n"
    }

    /// A large table in three chunks, a small table with an object of its own, and a pack of two.
    private func manifest() -> BackupManifest {
        let large = RestorePlanner.largeTableBytes
        let empty = object("schema/pre-data.sql", size: 0, plain: 0, rows: 0)
        let source = SourceRecord(database: "app", serverVersion: "15", serverVersionNum: 150000, systemIdentifier: "1", encoding: "UTF8")
        var m = BackupManifest(backupId: "b", toolVersion: "t", source: source, snapshotTime: Date(), startedAt: Date(), finishedAt: Date(),
                               compression: .init(algorithm: "zstd", level: 1), preData: empty, postData: empty,
                               tables: [table("big", plain: 3 * large, objects: (0..<3).map { object("data/big.\($0)", size: $0 == 2 ? 100 : 1000, plain: large) }),
                                        table("mid", plain: 1 << 20, objects: [object("data/mid", size: 500, plain: 1 << 20)]),
                                        table("p1", plain: 10, objects: []), table("p2", plain: 10, objects: [])],
                               sequences: [], materializedViews: [])
        m.packs = [PackRecord(object: object("data/pack.0", size: 50, plain: 20, rows: 2),
                              slices: [PackSlice(schema: "s", name: "p1", plainBytes: 10, rows: 1), PackSlice(schema: "s", name: "p2", plainBytes: 10, rows: 1)])]
        return m
    }

    private var postData: DDLScript {
        DDLScript("SET statement_timeout = 0;\n\n"
            + entry("CONSTRAINT", "big big_pkey", "ALTER TABLE ONLY s.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (id);")
            + entry("CONSTRAINT", "mid mid_pkey", "ALTER TABLE ONLY s.mid\n    ADD CONSTRAINT mid_pkey PRIMARY KEY (id);")
            + entry("CONSTRAINT", "p1 p1_pkey", "ALTER TABLE ONLY s.p1\n    ADD CONSTRAINT p1_pkey PRIMARY KEY (id);")
            + entry("INDEX", "big_v", "CREATE INDEX big_v ON s.big USING btree (v);")
            + entry("INDEX", "p2_v", "CREATE INDEX p2_v ON s.p2 USING btree (v);")
            + entry("TRIGGER", "big t", "CREATE TRIGGER t BEFORE UPDATE ON s.big FOR EACH ROW EXECUTE FUNCTION s.f();")
            + entry("FK CONSTRAINT", "mid mid_big_fkey", "ALTER TABLE ONLY s.mid\n    ADD CONSTRAINT mid_big_fkey FOREIGN KEY (id) REFERENCES s.big(id);")
            + entry("FK CONSTRAINT", "big big_mid_fkey", "ALTER TABLE ONLY s.big\n    ADD CONSTRAINT big_mid_fkey FOREIGN KEY (id) REFERENCES s.mid(id);"))
    }

    func testUnitsLoadLargestTableFirstWithItsChunksTogether() {
        let plan = RestorePlanner.plan(manifest(), postData: postData)
        XCTAssertEqual(plan.units.map(\.record.name), ["data/big.0", "data/big.1", "data/big.2", "data/mid", "data/pack.0"])
        let order = plan.units.indices.sorted { plan.priority[$0] > plan.priority[$1] }.map { plan.units[$0].record.name }
        XCTAssertEqual(order, ["data/big.0", "data/big.1", "data/big.2", "data/mid", "data/pack.0"],
                       "the largest table first, its small last chunk with it, then by size")
        XCTAssertEqual(Set(plan.priority).count, plan.units.count, "a strict order")
    }

    func testPackedTablesGetTheirDDLAndAnalyzeWithThePack() {
        let plan = RestorePlanner.plan(manifest(), postData: postData)
        XCTAssertEqual(plan.packDDL.keys.sorted(), [4])
        let script = plan.packDDL[4]!.joined(separator: "\n")
        XCTAssertTrue(script.contains("ADD CONSTRAINT p1_pkey") && script.contains("CREATE INDEX p2_v"), script)
        XCTAssertTrue(script.hasSuffix("ANALYZE \"s\".\"p1\";\nANALYZE \"s\".\"p2\";"), script)
        XCTAssertEqual(plan.analyze, ["s.big", "s.mid"], "packed tables are analyzed with their pack")
        XCTAssertEqual(plan.scheduled.map { plan.parallelEntries[$0].key?.name }, ["big big_pkey", "mid mid_pkey", "big_v"],
                       "the scheduler runs the other tables' entries; triggers and foreign keys are not parallel entries")
    }

    func testLargeTablesBuildTheirKeyIndexFirstAndSmallOnesRunTheStatement() {
        let plan = RestorePlanner.plan(manifest(), postData: postData)
        let bigKey = plan.parallelEntries.firstIndex { $0.key?.name == "big big_pkey" }!
        let midKey = plan.parallelEntries.firstIndex { $0.key?.name == "mid mid_pkey" }!
        XCTAssertEqual(plan.steps[bigKey].count, 2, "CREATE UNIQUE INDEX, then ADD CONSTRAINT ... USING INDEX")
        XCTAssertTrue(plan.steps[bigKey][1].contains("USING INDEX"), plan.steps[bigKey][1])
        XCTAssertEqual(plan.steps[midKey].count, 1)
        var partition = manifest()
        partition.tables[0].kind = "partition"
        let partitionPlan = RestorePlanner.plan(partition, postData: postData)
        XCTAssertEqual(partitionPlan.steps[bigKey].count, 1, "a partition keeps pg_dump's statement")
    }

    func testForeignKeysOfSmallTablesRunInBatchesAndLargeOnesSideBySide() {
        let m = manifest()
        let tables = Dictionary(m.tables.map { ($0.qualifiedKey, $0) }, uniquingKeysWith: { a, _ in a })
        let keys = postData.entries.filter { $0.type == "FK CONSTRAINT" }
        let (small, large) = RestorePlanner.foreignKeys(keys, tables: tables)
        XCTAssertEqual(large.map { $0.key?.name }, ["big big_mid_fkey"])
        XCTAssertEqual(small.count, 1)
        XCTAssertTrue(small[0].contains("mid_big_fkey"))
        let many = (0..<250).map { i in DDLScript(entry("FK CONSTRAINT", "mid k\(i)", "ALTER TABLE ONLY s.mid\n    ADD CONSTRAINT k\(i) FOREIGN KEY (id) REFERENCES s.big(id);")).entries[0] }
        let batches = RestorePlanner.foreignKeys(many, tables: tables).smallBatches
        XCTAssertEqual(batches.count, 3, "100 to a round trip")
        XCTAssertEqual(batches.map { $0.components(separatedBy: "ADD CONSTRAINT").count - 1 }, [100, 100, 50])
    }

    func testTheSchedulerRunsEveryPlannedTask() {
        let plan = RestorePlanner.plan(manifest(), postData: postData)
        var scheduler = plan.scheduler()
        var data: [Int] = [], ddl: [Int] = [], analyzed: [String] = []
        while let (ticket, work) = scheduler.next() {
            switch work {
            case .data(let index): data.append(index)
            case .ddl(_, let index): ddl.append(index)
            case .analyze(let table): analyzed.append(table)
            }
            scheduler.complete(ticket)
        }
        XCTAssertTrue(scheduler.isFinished)
        XCTAssertEqual(data.sorted(), Array(plan.units.indices))
        XCTAssertEqual(ddl.sorted(), Array(plan.scheduled.indices))
        XCTAssertEqual(analyzed.sorted(), ["s.big", "s.mid"])
    }

    /// pg_dump 18's `--statistics-only` script: one entry per relation; a relation the source never
    /// counted (`reltuples` -1) does not spare its table the ANALYZE.
    func testStatisticsCoverTheTablesTheSourceCountedAndSpareTheirAnalyze() throws {
        let relation = { (name: String, tuples: String) in
            "--\n-- Statistics for Name: \(name); Type: STATISTICS DATA; Schema: s; Owner: -\n--\n\n"
            + "SELECT * FROM pg_catalog.pg_restore_relation_stats(\n\t'version', '180006'::integer,\n\t'schemaname', 's',\n\t'relname', '\(name)',\n"
            + "\t'relpages', '1'::integer,\n\t'reltuples', '\(tuples)'::real\n);\n\n"
        }
        let script = "\\restrict abc\nSET statement_timeout = 0;\n\n" + relation("big", "1000") + relation("big_pkey", "1000")
            + relation("mid", "-1") + relation("p1", "1") + "\\unrestrict abc\n"
        // Read as it streams, whatever the chunk size: the same entries.
        var everyRead: [[RestoreStatistics.Entry]] = []
        for chunkSize in [1, 7, 64, script.utf8.count] {
            var entries: [RestoreStatistics.Entry] = []
            let reader = StatisticsEntryReader { entries.append($0) }
            let bytes = Array(script.utf8)
            for start in stride(from: 0, to: bytes.count, by: chunkSize) {
                try bytes[start..<min(start + chunkSize, bytes.count)].withUnsafeBytes { try reader.write($0) }
            }
            try reader.finish()
            everyRead.append(entries)
        }
        let entries = everyRead[0]
        XCTAssertTrue(everyRead.allSatisfy { $0 == entries })
        XCTAssertEqual(entries.map(\.relation), ["s.big", "s.big_pkey", "s.mid", "s.p1"])
        XCTAssertEqual(entries.map(\.counted), [true, true, false, true])
        XCTAssertFalse(entries.contains { $0.sql.contains("restrict") || $0.sql.contains("--") }, "no meta-commands or comments")
        XCTAssertTrue(entries[0].sql.hasPrefix("SELECT * FROM pg_catalog.pg_restore_relation_stats(\n") && entries[0].sql.hasSuffix("::real\n);"), entries[0].sql)
        let statistics = RestoreStatistics(record: ObjectRecord(name: "schema/statistics.sql", size: 0, sha256: "", plainBytes: 0, rows: 0),
                                           counted: Set(entries.filter(\.counted).map(\.relation)))
        let covered = statistics.covered(manifest().tables.map(\.qualifiedKey))
        XCTAssertEqual(covered, ["s.big", "s.p1"])
        let plan = RestorePlanner.plan(manifest(), postData: postData, statisticsLoaded: covered)
        XCTAssertEqual(plan.analyze, ["s.mid"])
        let packScript = plan.packDDL[4]!.joined(separator: "\n")
        XCTAssertTrue(packScript.hasSuffix("ANALYZE \"s\".\"p2\";") && !packScript.contains("\"p1\""), packScript)
    }
}
