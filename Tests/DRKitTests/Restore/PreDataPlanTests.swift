import XCTest
@testable import DRKit

/// Pre-data on several connections: each entry waits for what the table of contents says it needs,
/// and carries the placement settings pg_dump only writes when they change.
final class PreDataPlanTests: XCTestCase {
    private func header(_ name: String, _ type: String, _ schema: String = "s") -> String {
        "--\n-- Name: \(name); Type: \(type); Schema: \(schema); Owner: o\n--\n\n"
    }

    private var script: DDLScript {
        DDLScript("SET statement_timeout = 0;\nSET default_tablespace = '';\n\n"
            + header("s", "SCHEMA", "-") + "CREATE SCHEMA s;\n\n"
            + header("mood", "TYPE") + "CREATE TYPE s.mood AS ENUM ('a');\n\n"
            + header("a", "TABLE") + "CREATE TABLE s.a (m s.mood);\n\nSET default_tablespace = fast;\n\n"
            + header("b", "TABLE") + "CREATE TABLE s.b (id int);\n\nSET default_tablespace = '';\n\n"
            + header("TABLE a", "COMMENT") + "COMMENT ON TABLE s.a IS 'x';\n\n")
    }

    private func toc(_ entries: [(Int, String, String?, String, [Int])]) -> DumpTOC {
        DumpTOC(entries: entries.map { DumpTOC.Entry(id: $0.0, section: 2, type: $0.1, schema: $0.2, name: $0.3, dependencies: $0.4) })
    }

    func testEntriesNeedWhatTheTableOfContentsSaysEvenThroughEntriesTheScriptLacks() throws {
        // 9 is not in the script (an extension left out, say): the table needing it needs what it needs.
        let contents = toc([(1, "SCHEMA", nil, "s", []), (2, "TYPE", "s", "mood", [1]), (9, "EXTENSION", nil, "x", [2]),
                            (3, "TABLE", "s", "a", [1, 9]), (4, "TABLE", "s", "b", [1]), (5, "COMMENT", "s", "TABLE a", [3])])
        let needs = try XCTUnwrap(PreDataPlan.dependencies(of: script, toc: contents))
        XCTAssertEqual(needs, [[], [0], [0, 1], [0], [2]])
    }

    func testAnEntryTheTableOfContentsLacksOrPutsLaterMeansScriptOrder() {
        XCTAssertNil(PreDataPlan.dependencies(of: script, toc: toc([(1, "SCHEMA", nil, "s", []), (2, "TYPE", "s", "mood", [1]),
                                                                     (3, "TABLE", "s", "a", [1])])), "b and the comment are not in it")
        XCTAssertNil(PreDataPlan.dependencies(of: script, toc: toc([(1, "SCHEMA", nil, "s", []), (2, "TYPE", "s", "mood", [1, 4]),
                                                                     (3, "TABLE", "s", "a", [1]), (4, "TABLE", "s", "b", [1]),
                                                                     (5, "COMMENT", "s", "TABLE a", [3])])), "the type needs a later entry")
    }

    func testBatchesGoOutInScriptOrderOnceWhatTheyNeedIsDone() {
        // 0 ← 1..5, 3 ← 6
        var schedule = PreDataSchedule(dependencies: [[], [0], [0], [0], [0], [0], [3]])
        XCTAssertEqual(schedule.next(limit: 3), [0])
        XCTAssertEqual(schedule.next(limit: 3), [], "everything else waits for entry 0")
        schedule.complete([0])
        XCTAssertEqual(schedule.next(limit: 3), [1, 2, 3])
        XCTAssertEqual(schedule.next(limit: 3), [4, 5])
        schedule.complete([4, 5])
        XCTAssertEqual(schedule.next(limit: 3), [], "6 waits for 3, still running")
        XCTAssertFalse(schedule.isFinished)
        schedule.complete([1, 2, 3])
        XCTAssertEqual(schedule.next(limit: 3), [6])
        schedule.complete([6])
        XCTAssertTrue(schedule.isFinished)
    }

    func testEachEntryCarriesThePlacementInForceWhereItBegins() {
        let entries = script.entries
        XCTAssertEqual(entries[2].placement, "SET default_tablespace = '';\nRESET default_table_access_method;")
        XCTAssertEqual(entries[3].placement, "SET default_tablespace = fast;\nRESET default_table_access_method;",
                       "pg_dump's SET before b's header is b's, not a's")
        XCTAssertEqual(entries[4].placement, "SET default_tablespace = '';\nRESET default_table_access_method;")
        XCTAssertTrue(entries[3].runnable.hasPrefix("SET default_tablespace = fast;\nRESET default_table_access_method;\n--\n-- Name: b;"))
        XCTAssertEqual(DDLScript.table(of: DDLScript(header("i", "INDEX") + "CREATE INDEX i ON s.b (id);\n").entries[0]), "s.b")
        XCTAssertEqual(DDLScript(header("b", "TABLE") + "CREATE TABLE s.b (id int);\n").entries[0].placement, "", "nothing set, nothing carried")
    }
}
