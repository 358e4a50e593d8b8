import XCTest
@testable import DRKit

/// Lines of pg_dump output that look like headers, comments, blank lines, psql meta-commands or owner
/// changes but sit inside a quote are data: every line-based reader keeps them whole.
final class SQLLexerTests: XCTestCase {
    func testLinesKnowWhetherTheyContinueAQuote() {
        let text = """
            SELECT 'one -- not a comment
            two', E'it\\'s
            still', "an ""odd""
            name" FROM t; -- a comment's 'quote does not open
            CREATE FUNCTION f(integer) RETURNS text AS $fn$
            SELECT $$inner
            $$ || $1::text || a$b$c
            $fn$ LANGUAGE sql; /* outer /* inner */
            still a comment */ SELECT 1;
            SELECT $1, 'x';
            """
        let flags = SQLLexer.lines(of: text).map(\.continuesQuote)
        XCTAssertEqual(flags, [false, true, true, true, false, true, true, true, true, false])
    }

    func testCodeMarksEveryByte() {
        var lexer = SQLLexer()
        var code: [Bool] = []
        lexer.feed("a'b'c--d\ne".utf8) { _, isCode in code.append(isCode) }
        XCTAssertEqual(code, [true, false, false, false, true, false, false, false, true, true])
        XCTAssertFalse(lexer.continuesQuote)
        XCTAssertEqual(SQLText.statements("SELECT ';'; SELECT $x$;$x$; -- ;\nSELECT 3"), ["SELECT ';'", "SELECT $x$;$x$", "-- ;\nSELECT 3"])
    }

    /// A function body and a comment's text holding lines that look like pg_dump's own.
    private let script = """
        \\restrict abc
        SET statement_timeout = 0;

        --
        -- Name: f(); Type: FUNCTION; Schema: s; Owner: o
        --

        CREATE FUNCTION s.f() RETURNS text
            LANGUAGE sql
            AS $$ SELECT 'a
        \\b
        --
        -- Name: fake; Type: TABLE; Schema: s; Owner: o
        --

        ALTER TABLE s.t OWNER TO o;
        ' $$;


        ALTER FUNCTION s.f() OWNER TO o;

        --
        -- Name: TABLE t; Type: COMMENT; Schema: s; Owner: o
        --

        COMMENT ON TABLE s.t IS 'first
        --

        \\last';

        \\unrestrict abc
        """

    func testScriptEntriesKeepQuotedLinesWhole() throws {
        let ddl = DDLScript(script)
        XCTAssertEqual(ddl.entries.map(\.type), ["FUNCTION", "COMMENT"])
        let body = "AS $$ SELECT 'a\n\\b\n--\n-- Name: fake; Type: TABLE; Schema: s; Owner: o\n--\n\nALTER TABLE s.t OWNER TO o;\n' $$;"
        XCTAssertTrue(ddl.entries[0].sql.contains(body), ddl.entries[0].sql)
        XCTAssertTrue(DDLScript.statements(of: ddl.entries[0]).contains(body))
        XCTAssertTrue(DDLScript.statements(of: ddl.entries[1]).hasSuffix("COMMENT ON TABLE s.t IS 'first\n--\n\n\\last';"))
        XCTAssertFalse(ddl.sql.contains("restrict"))

        let unowned = ddl.without(owners: true, privileges: false)
        XCTAssertTrue(unowned.entries[0].sql.contains(body))
        XCTAssertFalse(unowned.entries[0].sql.contains("ALTER FUNCTION s.f() OWNER TO o;"))

        let bytes = Array(script.utf8)
        let comment = DDLEntryKey(type: "COMMENT", schema: "s", name: "TABLE t")
        let split = try XCTUnwrap(DDLScript.splitSections(bytes, firstPostData: comment))
        XCTAssertTrue(String(decoding: split.preData, as: UTF8.self).hasSuffix("OWNER TO o;\n\n"))
        XCTAssertNil(DDLScript.splitSections(bytes, firstPostData: DDLEntryKey(type: "TABLE", schema: "s", name: "fake")),
                     "a header inside a function body is no entry")
    }

    /// One reading of the script's lines serves every reader: the separator before a header belongs to its
    /// entry, a header inside a quote is data, a trailer block is no entry.
    func testDumpScriptLinesFindEntriesOutsideQuotes() {
        let lines = script.split(separator: "\n", omittingEmptySubsequences: false)
        let kinds = DumpScriptLines.kinds(of: lines.map(\.utf8))
        let headers = zip(lines, kinds).filter { $1 == .entryHeader }.map(\.0)
        XCTAssertEqual(headers, ["-- Name: f(); Type: FUNCTION; Schema: s; Owner: o", "-- Name: TABLE t; Type: COMMENT; Schema: s; Owner: o"])
        XCTAssertEqual(zip(lines, kinds).filter { $0.0 == "--" }.map(\.1), [.separator, .separator, .quoted, .quoted, .separator, .separator, .quoted])
        XCTAssertEqual(kinds[lines.firstIndex(of: "-- Name: fake; Type: TABLE; Schema: s; Owner: o")!], .quoted)

        var reader = DumpScriptLines()
        let trailer = ["--", "-- PostgreSQL database dump complete", "--", "", "-- Data for Name: t; Type: TABLE DATA; Schema: s; Owner: o", "x -- Name: y"]
        XCTAssertEqual(trailer.map { reader.next(Array("\($0)\n".utf8)) }, [.separator, .blockComment, .separator, .code, .code, .code],
                       "a header counts only right after a separator, with or without its newline")
    }

    func testStatisticsValuesKeepTheirLines() throws {
        let value = "{\"x\n--\n-- Statistics for Name: fake; Type: STATISTICS DATA; Schema: s; Owner: -\n\n\\y\"}"
        let script = "--\n-- Statistics for Name: t; Type: STATISTICS DATA; Schema: s; Owner: -\n--\n\n"
            + "SELECT * FROM pg_catalog.pg_restore_attribute_stats(\n\t'most_common_vals', '\(value)'::text\n);\n\n"
        var entries: [RestoreStatistics.Entry] = []
        let reader = StatisticsEntryReader { entries.append($0) }
        try Array(script.utf8).withUnsafeBytes { try reader.write($0) }
        try reader.finish()
        XCTAssertEqual(entries.map(\.relation), ["s.t"])
        XCTAssertEqual(entries.first?.sql, "SELECT * FROM pg_catalog.pg_restore_attribute_stats(\n\t'most_common_vals', '\(value)'::text\n);")
    }

    func testSchemaStatementsSplitOutsideEveryKindOfQuote() {
        let text = "COMMENT ON TABLE public.t IS 'costs $$';\n\nCREATE TABLE public.u (\n    a integer\n);\n"
        XCTAssertEqual(SchemaText(pgDumpOutput: text).statements.map(\.text),
                       ["COMMENT ON TABLE public.t IS 'costs $$';", "CREATE TABLE public.u (\n    a integer\n);"])
    }
}
