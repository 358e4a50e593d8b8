import XCTest
import PostgresClient
import ObjectStorage
@testable import DRKit

/// Parsers and small pure helpers, checked by value.
final class TextParsingTests: XCTestCase {
    func testDDLScriptSplitsPgDumpEntriesAndKeepsThePreamble() {
        let script = DDLScript("""
            SET statement_timeout = 0;
            \\restrict abc
            SELECT pg_catalog.set_config('search_path', '', false);

            --
            -- Name: orders_pkey; Type: CONSTRAINT; Schema: shop; Owner: app
            --

            ALTER TABLE ONLY shop.orders
                ADD CONSTRAINT orders_pkey PRIMARY KEY (id);
            ALTER TABLE shop.orders OWNER TO app;

            --
            -- Name: orders_placed; Type: INDEX; Schema: shop; Owner: app
            --

            CREATE INDEX orders_placed ON shop.orders USING btree (placed);

            --
            -- Name: TABLE orders; Type: ACL; Schema: shop; Owner: app
            --

            GRANT SELECT ON TABLE shop.orders TO reporting;
            \\unrestrict abc
            """)
        XCTAssertTrue(script.preamble.contains("SET statement_timeout = 0;"))
        XCTAssertFalse(script.preamble.contains("\\restrict"), "psql meta-commands never reach the server")
        XCTAssertEqual(script.entries.map(\.type), ["CONSTRAINT", "INDEX", "ACL"])
        XCTAssertTrue(script.entries[0].sql.contains("ADD CONSTRAINT orders_pkey PRIMARY KEY (id);"))
        XCTAssertFalse(script.entries.contains { $0.sql.contains("\\unrestrict") })
        let bare = script.without(owners: true, privileges: true)
        XCTAssertEqual(bare.entries.map(\.type), ["CONSTRAINT", "INDEX"])
        XCTAssertFalse(bare.entries[0].sql.contains("OWNER TO"))
        XCTAssertEqual(script.without(owners: false, privileges: false), script)
    }

    func testPlainKeysBuildTheirIndexFirstAndOthersRunAsWritten() {
        func entry(_ statement: String) -> DDLScript.Entry {
            DDLScript("--\n-- Name: x; Type: CONSTRAINT; Schema: s; Owner: o\n--\n\n" + statement + "\n\n").entries[0]
        }
        let primary = entry("ALTER TABLE ONLY app.\"Order Lines\"\n    ADD CONSTRAINT \"Order Lines_pkey\" PRIMARY KEY (id, \"Line No\");")
        XCTAssertEqual(DDLScript.indexFirst(primary), [
            "CREATE UNIQUE INDEX \"Order Lines_pkey\" ON app.\"Order Lines\" USING btree (id, \"Line No\");",
            "ALTER TABLE ONLY app.\"Order Lines\" ADD CONSTRAINT \"Order Lines_pkey\" PRIMARY KEY USING INDEX \"Order Lines_pkey\";",
        ])
        XCTAssertEqual(DDLScript.table(of: primary), "app.Order Lines", "the table it acts on, so it waits for that table's data only")
        XCTAssertEqual(DDLScript.indexFirst(entry("ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_k UNIQUE (k);"))?.first,
                       "CREATE UNIQUE INDEX t_k ON s.t USING btree (k);")
        for asWritten in ["ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id) INCLUDE (v);",
                          "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_k UNIQUE (k) DEFERRABLE INITIALLY DEFERRED;",
                          "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id) WITH (fillfactor='70');",
                          "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_x EXCLUDE USING gist (r WITH &&);",
                          "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_c CHECK ((v > 0)) NOT VALID;",
                          "ALTER TABLE ONLY s.t\n    ADD CONSTRAINT t_k UNIQUE NULLS NOT DISTINCT (k);"] {
            XCTAssertNil(DDLScript.indexFirst(entry(asWritten)), asWritten)
        }
    }

    func testOneSchemaScriptSplitsWhereItsFirstPostDataEntryBegins() {
        let preamble = "SET statement_timeout = 0;\n\\restrict abc\nSET client_encoding = 'LATIN1';\n\n"
        let table = "--\n-- Name: t; Type: TABLE; Schema: s; Owner: o\n--\n\nCREATE TABLE s.t (v text DEFAULT '\u{E9}');\n\n"
        let comment = "--\n-- Name: TABLE t; Type: COMMENT; Schema: s; Owner: o\n--\n\nCOMMENT ON TABLE s.t IS 'x';\n\n"
        let index = "--\n-- Name: t_v; Type: INDEX; Schema: s; Owner: o\n--\n\nCREATE INDEX t_v ON s.t (v);\n\n"
        let acl = "--\n-- Name: TABLE t; Type: ACL; Schema: s; Owner: o\n--\n\nGRANT SELECT ON TABLE s.t TO r;\n\\unrestrict abc\n"
        // A byte that is not UTF-8 (a LATIN1 database) must come through unchanged.
        let script = Array((preamble + table + comment + index + acl).utf8) + [0xE9, 0x0A]
        let split = try! XCTUnwrap(DDLScript.splitSections(script, firstPostData: DDLEntryKey(type: "INDEX", schema: "s", name: "t_v")))
        XCTAssertEqual(split.preData, Array((preamble + table + comment).utf8))
        XCTAssertEqual(split.postData, Array((preamble + index + acl).utf8) + [0xE9, 0x0A], "post-data gets the session settings too")
        XCTAssertEqual(DDLScript(String(decoding: split.postData, as: UTF8.self)).entries.map(\.type), ["INDEX", "ACL"])
        XCTAssertNil(DDLScript.splitSections(script, firstPostData: DDLEntryKey(type: "INDEX", schema: "s", name: "missing")),
                     "no such header: the caller dumps each section on its own")
        let noPostData = try! XCTUnwrap(DDLScript.splitSections(script, firstPostData: nil))
        XCTAssertEqual(noPostData.preData, script)
        XCTAssertEqual(noPostData.postData, Array(preamble.utf8))
        XCTAssertEqual(DDLScript.splitSections([], firstPostData: nil)?.postData, [])
    }

    func testSQLStatementsSplitOutsideQuotesDollarQuotesAndComments() {
        let sql = """
            CREATE TABLE t (a text DEFAULT 'x;y', "b;c" int); -- trailing; comment
            INSERT INTO t VALUES ('it''s; fine');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql;
            DO $$ BEGIN PERFORM 1; END $$;
            ;;
            SELECT 1
            """
        XCTAssertEqual(SQLStatements.split(sql), [
            #"CREATE TABLE t (a text DEFAULT 'x;y', "b;c" int)"#,
            "INSERT INTO t VALUES ('it''s; fine')",
            "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql",
            "DO $$ BEGIN PERFORM 1; END $$",
            "SELECT 1",
        ])
        XCTAssertEqual(SQLStatements.split("  -- only a comment\n"), [])
    }

    func testGlobs() {
        XCTAssertTrue(Glob.matches("public.*", "public.orders"))
        XCTAssertTrue(Glob.matches("shop.order?", "shop.orders"))
        XCTAssertTrue(Glob.matches("[ab]*", "beta"))
        XCTAssertFalse(Glob.matches("public.*", "shop.orders"))
        XCTAssertFalse(Glob.matches("shop.order?", "shop.order"))
        XCTAssertTrue(Glob.matches("*", ""))
    }

    func testDurations() {
        XCTAssertEqual(Durations.parse("90s"), 90)
        XCTAssertEqual(Durations.parse("30m"), 1800)
        XCTAssertEqual(Durations.parse("2h"), 7200)
        XCTAssertEqual(Durations.parse("7d"), 604_800)
        XCTAssertEqual(Durations.parse("0s"), 0)
        XCTAssertEqual(Durations.parse("1.5h"), 5400)
        for bad in ["", "h", "-1s", "-5", "3w", "1 h", "ten", "45", "30", "0", "infs", "nans"] { XCTAssertNil(Durations.parse(bad), bad) }
    }
}
