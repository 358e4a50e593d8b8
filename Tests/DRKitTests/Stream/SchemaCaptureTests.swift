import XCTest
@testable import DRKit

/// What the replay does with a captured DDL query string, and what every dump leaves out.
final class SchemaCaptureTests: XCTestCase {
    private func command(_ query: String, rewrite: Int = 0) -> SchemaCapture.Command {
        SchemaCapture.Command(key: "1/t", query: query, tag: "ALTER TABLE", searchPath: "public", role: "app", rewrite: rewrite)
    }

    func testStatementsSplitOnlyAtTopLevelSemicolons() {
        let sql = """
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$; -- a comment; with a semicolon
            COMMENT ON TABLE t IS 'it''s; fine'; /* nested /* ; */ still */ ALTER TABLE "a;b" ADD COLUMN c text DEFAULT E'\\'; x';
            CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$
            """
        let statements = SQLText.statements(sql)
        XCTAssertEqual(statements.count, 4, "\(statements)")
        XCTAssertTrue(statements[0].hasSuffix("$$ SELECT 1; $$"))
        XCTAssertTrue(statements[1].hasPrefix("-- a comment; with a semicolon\nCOMMENT ON TABLE t IS 'it''s; fine'"))
        XCTAssertTrue(statements[2].contains("\"a;b\"") && statements[2].hasSuffix("E'\\'; x'"))
        XCTAssertEqual(SQLText.topLevelWords(statements[1]), ["COMMENT", "ON", "TABLE", "T", "IS"])
        XCTAssertEqual(SQLText.topLevelWords("CREATE TABLE t (a int GENERATED ALWAYS AS (b) STORED, b int)"), ["CREATE", "TABLE", "T"])
    }

    func testDDLAloneReplaysAndAnythingElseIsRefusedWithTheReason() {
        XCTAssertEqual(SchemaCapture.verdict(for: [command("ALTER TABLE orders RENAME COLUMN note TO comment")]),
                       .replay(["ALTER TABLE orders RENAME COLUMN note TO comment"]))
        // Transaction control and ordinary settings are left out; the DDL runs, each statement once.
        XCTAssertEqual(SchemaCapture.verdict(for: [command("BEGIN; SET lock_timeout = '5s'; CREATE TABLE a (id int); CREATE INDEX ON a (id); COMMIT;"),
                                                   command("BEGIN; SET lock_timeout = '5s'; CREATE TABLE a (id int); CREATE INDEX ON a (id); COMMIT;")]),
                       .replay(["CREATE TABLE a (id int)", "CREATE INDEX ON a (id)"]))
        XCTAssertEqual(SchemaCapture.verdict(for: [command("create view v as select 1")]), .replay(["create view v as select 1"]))
        func refused(_ verdict: SchemaCapture.Verdict, _ mentions: String, file: StaticString = #filePath, line: UInt = #line) {
            guard case .refuse(let why) = verdict else { return XCTFail("replayed: \(verdict)", file: file, line: line) }
            XCTAssertTrue(why.contains(mentions), why, file: file, line: line)
        }
        refused(SchemaCapture.verdict(for: [command("ALTER TABLE t ADD COLUMN c int; UPDATE t SET c = 1")]), "not DDL alone (UPDATE")
        refused(SchemaCapture.verdict(for: [command("SELECT migrate_v2()")]), "not DDL alone (SELECT")
        refused(SchemaCapture.verdict(for: [command("DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD c int'; END $$")]), "not DDL alone (DO")
        refused(SchemaCapture.verdict(for: [command("CREATE UNLOGGED TABLE copy AS SELECT * FROM t")]), "CREATE TABLE ... AS")
        refused(SchemaCapture.verdict(for: [command("SET search_path = app; CREATE TABLE t (id int)")]), "search_path")
        refused(SchemaCapture.verdict(for: [command("ALTER TABLE t ADD COLUMN at timestamptz DEFAULT clock_timestamp()", rewrite: 2)]), "volatile default")
        // A type change rewrites the table too, deterministically: replayed.
        XCTAssertEqual(SchemaCapture.verdict(for: [command("ALTER TABLE t ALTER COLUMN total TYPE numeric(14,3)", rewrite: 4)]),
                       .replay(["ALTER TABLE t ALTER COLUMN total TYPE numeric(14,3)"]))
    }

    /// The event-trigger entries go, whatever chunks pg_dump's output arrives in; everything else stays byte for byte.
    func testDumpFilterTakesOutOnlyTheCaptureTriggers() {
        let script = """
            --
            -- Name: orders; Type: TABLE; Schema: public; Owner: app
            --

            CREATE TABLE public.orders (id integer);

            --
            -- Name: drkit_capture_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres
            --

            CREATE EVENT TRIGGER drkit_capture_ddl ON ddl_command_end
               EXECUTE FUNCTION drkit_capture.on_ddl();

            ALTER EVENT TRIGGER drkit_capture_ddl ENABLE ALWAYS;

            --
            -- Name: audit; Type: EVENT TRIGGER; Schema: -; Owner: postgres
            --

            CREATE EVENT TRIGGER audit ON ddl_command_end
               EXECUTE FUNCTION public.audit();

            --
            -- Name: f(); Type: FUNCTION; Schema: public; Owner: app
            --

            CREATE FUNCTION public.f() RETURNS text
                LANGUAGE sql
                AS $$ SELECT '
            --
            -- Name: drkit_capture_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres
            --
            kept, a function body'::text $$;

            --
            -- PostgreSQL database dump complete
            --

            """
        let expected = script.replacingOccurrences(of: """
            --
            -- Name: drkit_capture_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres
            --

            CREATE EVENT TRIGGER drkit_capture_ddl ON ddl_command_end
               EXECUTE FUNCTION drkit_capture.on_ddl();

            ALTER EVENT TRIGGER drkit_capture_ddl ENABLE ALWAYS;


            """, with: "")
        XCTAssertNotEqual(expected, script)
        let bytes = Array(script.utf8)
        for size in [1, 2, 7, 64, bytes.count] {
            var filter = SchemaCapture.DumpFilter()
            var out: [UInt8] = []
            var index = 0
            while index < bytes.count {
                let chunk = Array(bytes[index..<min(bytes.count, index + size)])
                chunk.withUnsafeBytes { out += filter.feed($0) }
                index += size
            }
            out += filter.finish()
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected, "chunks of \(size)")
        }
    }

    /// pg_dump writes event triggers last: the dump's trailer block after drkit's own entry ends it.
    func testDumpFilterKeepsTheTrailerAfterTheLastEntry() {
        let entry = "--\n-- Name: drkit_capture_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres\n--\n\nCREATE EVENT TRIGGER drkit_capture_ddl ON ddl_command_end\n   EXECUTE FUNCTION drkit_capture.on_ddl();\n\n"
        let trailer = "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n"
        var filter = SchemaCapture.DumpFilter()
        var out: [UInt8] = []
        Array((entry + trailer).utf8).withUnsafeBytes { out += filter.feed($0) }
        out += filter.finish()
        XCTAssertEqual(String(decoding: out, as: UTF8.self), trailer)
    }
}
