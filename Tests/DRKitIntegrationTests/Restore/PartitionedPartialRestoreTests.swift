import XCTest
import Foundation
import TestSupport
import PostgresClient
@testable import DRKit

/// D10: a partitioned table holds no rows itself; choosing it restores its partitions, at every level.
final class PartitionedPartialRestoreTests: DRKitTestCase {
    func testAPartitionedTableIsRestoredWithItsPartitions() throws {
        let source = try newDatabase("drkit_prestore_parts", sql: """
            CREATE TABLE public.measurements (id int NOT NULL, taken date NOT NULL, value numeric) PARTITION BY RANGE (taken);
            CREATE TABLE public.measurements_2024 PARTITION OF public.measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
                PARTITION BY HASH (id);
            CREATE TABLE public.measurements_2024_a PARTITION OF public.measurements_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
            CREATE TABLE public.measurements_2024_b PARTITION OF public.measurements_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
            CREATE TABLE public.measurements_2025 PARTITION OF public.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
            CREATE TABLE public.unrelated (id int); INSERT INTO public.unrelated VALUES (1);
            INSERT INTO public.measurements SELECT g, date '2024-01-01' + (g % 700), g FROM generate_series(1, 20000) g;
            """)
        let id = try backup(source)
        let target = scratchName("drkit_prestore_parts_t")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile, "--table", "public.measurements"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM public.measurements", in: target), "20000")
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM public.measurements_2024_b", in: target),
                       try PostgresClientBridge.scalar("SELECT count(*) FROM public.measurements_2024_b", in: source))
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM pg_class WHERE relname = 'unrelated'", in: target), "0")

        let into = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(source),
                                      "--table", "public.measurements", "--into-schema", "recovered"])
        XCTAssertEqual(into.status, 0, into.stdout + into.stderr)
        XCTAssertEqual(try PostgresClientBridge.scalar("SELECT count(*) FROM recovered.measurements", in: source), "20000")
    }

    func testIntoSchemaNamesArePlainNewSchemas() throws {
        let id = try backup(try newDatabase("drkit_prestore_names", sql: "CREATE TABLE t (id int); INSERT INTO t VALUES (1);"))
        for name in ["", "pg_temp", "pg_foo", String(repeating: "x", count: 64)] {
            let result = try Command.drkit(["restore", id, "--repo", repo, "--key-file", keyFile, "--target", try conninfo(scratchName("x")),
                                            "--table", "public.t", "--into-schema", name])
            XCTAssertEqual(result.status, 2, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("--into-schema"), result.stderr)
        }
    }
}
