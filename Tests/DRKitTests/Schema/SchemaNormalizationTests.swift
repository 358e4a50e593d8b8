import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

final class SchemaNormalizationTests: XCTestCase {
    /// PostgreSQL 16+ prints a single-table view's columns unqualified; 15 qualified them. Both read
    /// the same; a view over a join keeps its qualifiers (every version prints them).
    func testSingleTableViewsReadTheSameFrom15And18() {
        let fifteen = "CREATE VIEW public.big_orders AS\n SELECT orders.id,\n    orders.total\n   FROM public.orders\n  WHERE (orders.total > (1000)::numeric);"
        let eighteen = "CREATE VIEW public.big_orders AS\n SELECT id,\n    total\n   FROM public.orders\n  WHERE (total > (1000)::numeric);"
        XCTAssertEqual(SchemaText(pgDumpOutput: fifteen), SchemaText(pgDumpOutput: eighteen))
        XCTAssertNotEqual(SchemaText(pgDumpOutput: fifteen), SchemaText(pgDumpOutput: eighteen.replacingOccurrences(of: "1000", with: "2000")))
        let join = "CREATE VIEW public.v AS\n SELECT o.id,\n    c.name\n   FROM (public.orders o\n     JOIN public.customers c ON ((c.id = o.customer)));"
        XCTAssertEqual(SchemaText(pgDumpOutput: join).statements.first?.text, join)
    }

    func testRunVaryingLinesAreDroppedAndBodiesKept() {
        let a = """
            --\r
            -- PostgreSQL database dump\r
            --\r
            \\restrict abc123\r
            -- Dumped from database version 15.18\r
            -- Dumped by pg_dump version 15.18\r
            SET statement_timeout = 0;\r
            SELECT pg_catalog.set_config('search_path', '', false);\r
            --\r
            -- Name: f(); Type: FUNCTION; Schema: public; Owner: -\r
            --\r
            CREATE FUNCTION public.f() RETURNS integer   \r
                LANGUAGE plpgsql\r
                AS $$\r
            -- Name: kept; Type: inside a body\r
            SET x = 1;\r
            BEGIN RETURN 1; END $$;\r
            \r
            \r
            \r
            CREATE TABLE public.t (\r
                id integer\r
            );\r
            \\unrestrict abc123\r
            """
        let b = """
            -- drkit schema snapshot
            -- iteration: 3
            -- end of drkit header
            \\restrict zzz
            CREATE FUNCTION public.f() RETURNS integer
                LANGUAGE plpgsql
                AS $$
            -- Name: kept; Type: inside a body
            SET x = 1;
            BEGIN RETURN 1; END $$;

            CREATE TABLE public.t (
                id integer
            );
            """
        let normalizedA = SchemaText(pgDumpOutput: a)
        XCTAssertEqual(normalizedA, SchemaText(pgDumpOutput: b))
        XCTAssertEqual(normalizedA.statements.count, 2)
        XCTAssertTrue(normalizedA.normalized.contains("SET x = 1;"), "function bodies are never normalized")
        XCTAssertEqual(normalizedA.statements.map(\.object.kind), [.function, .table])
        XCTAssertEqual(normalizedA.statements[0].object.name, "public.f()")
    }

    func testUnifiedDiffMatchesDiffU() throws {
        let old = (1...40).map { "line \($0)" }.joined(separator: "\n")
        var newLines = (1...40).map { "line \($0)" }
        newLines.remove(at: 4)
        newLines.insert("inserted", at: 20)
        newLines[35] = "changed"
        let new = newLines.joined(separator: "\n")
        let ours = UnifiedDiff.render(old: old, new: new, oldLabel: "a", newLabel: "b")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try (old + "\n").write(to: dir.appendingPathComponent("a"), atomically: true, encoding: .utf8)
        try (new + "\n").write(to: dir.appendingPathComponent("b"), atomically: true, encoding: .utf8)
        let reference = try Command.run("/usr/bin/diff", ["-u", "--label", "a", "--label", "b", dir.appendingPathComponent("a").path, dir.appendingPathComponent("b").path])
        XCTAssertEqual(ours, reference.stdout)
        XCTAssertEqual(UnifiedDiff.render(old: old, new: old, oldLabel: "a", newLabel: "b"), "")
    }

    func testNarrowingRules() {
        XCTAssertTrue(ColumnType.isNarrowing(from: "bigint", to: "integer"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "integer", to: "bigint"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "text", to: "character varying(10)"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "character varying(20)", to: "character varying(10)"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "character varying(10)", to: "text"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "numeric(12,2)", to: "numeric(10,2)"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "numeric(10,2)", to: "numeric(12,2)"))
    }
}
