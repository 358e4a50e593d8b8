import XCTest
import Foundation
import TestSupport
import PostgresClient
@testable import DRKit

/// The pure parts: pattern rules and the plan over a table of contents.
final class PartialRestorePlanTests: XCTestCase {
    func testNamePatternsFollowPsqlRules() throws {
        XCTAssertTrue(try NamePattern("app.orders").matches(schema: "app", name: "orders"))
        XCTAssertTrue(try NamePattern("APP.Orders").matches(schema: "app", name: "orders"), "unquoted letters fold")
        XCTAssertFalse(try NamePattern("app.\"Orders\"").matches(schema: "app", name: "orders"))
        XCTAssertTrue(try NamePattern("app.\"Orders\"").matches(schema: "app", name: "Orders"))
        XCTAssertTrue(try NamePattern("app.ord*").matches(schema: "app", name: "orders"))
        XCTAssertTrue(try NamePattern("*.orders").matches(schema: "billing", name: "orders"))
        XCTAssertTrue(try NamePattern("orders").matches(schema: "any", name: "orders"), "no schema part: any schema")
        XCTAssertTrue(try NamePattern("\"a.b\"").matches(schema: "s", name: "a.b"), "a quoted dot is part of the name")
        XCTAssertFalse(try NamePattern("\"a*\"").matches(schema: "s", name: "ab"), "quoted wildcards are literal")
        XCTAssertTrue(try NamePattern("t$").matches(schema: "s", name: "t$"), "$ is literal")
        XCTAssertThrowsError(try NamePattern("a.b.c.d"))
    }

    func testPlanTakesDependenciesAndAttachmentsAndSkipsForeignKeysToTablesLeftOut() throws {
        func entry(_ id: Int, _ type: String, _ schema: String?, _ name: String, _ deps: [Int] = []) -> DumpTOC.Entry {
            DumpTOC.Entry(id: id, section: 2, type: type, schema: schema, name: name, dependencies: deps)
        }
        let toc = DumpTOC(entries: [
            entry(1, "SCHEMA", nil, "app"), entry(2, "TYPE", "app", "status", [1]),
            entry(3, "TABLE", "app", "customers", [1]), entry(4, "TABLE", "app", "orders", [1, 2]),
            entry(5, "SEQUENCE", "app", "orders_id_seq", [1, 4]), entry(6, "DEFAULT", "app", "orders id", [4, 5]),
            entry(7, "CONSTRAINT", "app", "customers customers_pkey", [3]), entry(8, "FK CONSTRAINT", "app", "orders orders_customer_fkey", [4, 7]),
            entry(9, "FUNCTION", "app", "touch()", [1]), entry(10, "TRIGGER", "app", "orders orders_touch", [4, 9]),
            entry(11, "VIEW", "app", "paid", [4]), entry(12, "ACL", "app", "TABLE orders", [4]),
        ])
        let plan = try PartialRestorePlan.make(toc: toc, tablePatterns: ["app.orders"], schemaPatterns: [])
        XCTAssertEqual(plan.tables, ["app.orders"])
        XCTAssertEqual(Set(plan.entries.map(\.name)), ["app", "status", "orders", "orders_id_seq", "orders id", "touch()", "orders orders_touch", "TABLE orders"])
        XCTAssertEqual(plan.skipped, ["FK CONSTRAINT app.orders orders_customer_fkey: needs app.customers, which is not restored"])
        let both = try PartialRestorePlan.make(toc: toc, tablePatterns: ["app.orders", "app.customers"], schemaPatterns: [])
        XCTAssertTrue(both.entries.contains(.init(type: "FK CONSTRAINT", schema: "app", name: "orders orders_customer_fkey")))
        XCTAssertFalse(both.entries.contains { $0.type == "VIEW" }, "a view is not part of its tables")
        let schema = try PartialRestorePlan.make(toc: toc, tablePatterns: [], schemaPatterns: ["app"])
        XCTAssertTrue(schema.entries.contains(.init(type: "VIEW", schema: "app", name: "paid")), "a whole schema brings its views")
    }

    func testUnreadableArchivesAreRefusedByName() {
        let header = Array("PGDMP".utf8)
        for bytes in [[], Array("NOTADUMP!!!!".utf8), header + [1, 17, 0, 4, 8, 1, 0, 0, 0, 0, 0], header + [1, 14, 0, 4, 8, 1, 0, 1]] {
            XCTAssertThrowsError(try DumpTOC.parse(bytes)) { XCTAssertTrue($0 is DumpTOC.Malformed, "\($0)") }
        }
    }

    func testSchemaRenameRewritesQualifiersOnly() {
        XCTAssertEqual(SchemaRename.rename("ALTER TABLE ONLY app.orders ALTER COLUMN id SET DEFAULT nextval('app.orders_id_seq'::regclass);", from: "app", to: "recovered"),
                       "ALTER TABLE ONLY \"recovered\".orders ALTER COLUMN id SET DEFAULT nextval('\"recovered\".orders_id_seq'::regclass);")
        XCTAssertEqual(SchemaRename.rename("CREATE TABLE myapp.t (a app.status); -- happ.x", from: "app", to: "r"),
                       "CREATE TABLE myapp.t (a \"r\".status); -- happ.x")
        XCTAssertEqual(SchemaRename.rename("CREATE TABLE \"My App\".t ();", from: "My App", to: "r"), "CREATE TABLE \"r\".t ();")
    }
}
