import XCTest
@testable import DRKit

/// Schema drift by value: which changes are named, which are destructive, and the unified diff.
final class SchemaDiffTests: XCTestCase {
    func testColumnTypeNarrowingIsDestructive() {
        XCTAssertTrue(ColumnType.isNarrowing(from: "bigint", to: "integer"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "integer", to: "bigint"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "text", to: "character varying(20)"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "character varying(40)", to: "character varying(20)"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "character varying(20)", to: "character varying(40)"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "numeric(12,2)", to: "numeric(10,2)"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "numeric(12,4)", to: "numeric(12,2)"))
        XCTAssertFalse(ColumnType.isNarrowing(from: "numeric(10,2)", to: "numeric(12,2)"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "numeric", to: "integer"))
        XCTAssertTrue(ColumnType.isNarrowing(from: "timestamp with time zone", to: "date"))
    }

    func testAddedRemovedAndChangedObjectsAreNamed() {
        let snapshot = SchemaText(pgDumpOutput: """
            CREATE TABLE public.orders (
                id bigint NOT NULL,
                total numeric(12,2),
                note text
            );

            CREATE TABLE public.old_audit (
                id integer
            );
            """)
        let live = SchemaText(pgDumpOutput: """
            CREATE TABLE public.orders (
                id bigint NOT NULL,
                total numeric(10,2)
            );

            CREATE INDEX orders_total ON public.orders USING btree (total);
            """)
        let diff = SchemaDiff(snapshot: snapshot, live: live, snapshotLabel: "snapshot", liveLabel: "live")
        XCTAssertTrue(diff.hasDrift)
        XCTAssertTrue(diff.unifiedDiff.hasPrefix("--- snapshot\n+++ live\n"), diff.unifiedDiff)
        XCTAssertTrue(diff.unifiedDiff.contains("-    note text") && diff.unifiedDiff.contains("+CREATE INDEX orders_total"), diff.unifiedDiff)
        let named = diff.changes.map { "\($0.change.rawValue) \($0.name)\($0.destructive ? " !" : "")" }
        XCTAssertTrue(named.contains { $0.hasPrefix("removed public.old_audit") && $0.hasSuffix("!") }, "\(named)")
        XCTAssertTrue(diff.changes.contains { $0.change == .added && $0.name.contains("orders_total") && !$0.destructive }, "\(named)")
        XCTAssertTrue(diff.changes.filter(\.destructive).count >= 3, "dropped table, dropped column, narrowed numeric: \(named)")
        XCTAssertFalse(SchemaDiff(snapshot: live, live: live, snapshotLabel: "a", liveLabel: "b").hasDrift)
    }
}
