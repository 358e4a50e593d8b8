import XCTest
@testable import DRKit

/// The planner is pure: a catalog in, the ordered work out.
final class BackupPlannerTests: XCTestCase {
    private func catalog(_ sizes: [Int64], blockSize: Int64 = 8192) -> Catalog {
        var c = Catalog()
        c.blockSize = blockSize
        c.tables = sizes.enumerated().map { CatalogTable(schema: "s", name: "t\($0.offset)", kind: "table", columns: ["id", "v"], heapBytes: $0.element) }
        return c
    }

    private func chunks(_ tasks: [BackupTask]) -> [TableChunk] {
        tasks.compactMap { if case .tableChunk(let c) = $0 { return c } else { return nil } }
    }

    func testChunksLargestFirst() {
        let tasks = BackupPlanner.plan(catalog([16_384, 81_920, 0]), splitBytes: 1 << 30, tidRangeScans: true)
        XCTAssertEqual(chunks(tasks).count, tasks.count, "only data work is planned")
        XCTAssertEqual(chunks(tasks).map(\.tableIndex), [1, 0, 2], "largest first, so the tail of the run is small")
        XCTAssertTrue(chunks(tasks).allSatisfy { $0.startBlock == nil && $0.endBlock == nil }, "small tables are one whole-table chunk")
    }

    func testLargeTablesSplitIntoContiguousBlockRangesCoveringTheTable() {
        // 10 blocks of 8 KiB with 3-block chunks: [0,3) [3,6) [6,9) [9,end).
        let planned = chunks(BackupPlanner.plan(catalog([10 * 8192]), splitBytes: 3 * 8192, tidRangeScans: true))
            .sorted { $0.chunkIndex < $1.chunkIndex }
        XCTAssertEqual(planned.map(\.chunkIndex), [0, 1, 2, 3])
        XCTAssertEqual(planned.map(\.startBlock), [0, 3, 6, 9])
        XCTAssertEqual(planned.map(\.endBlock), [3, 6, 9, nil], "the last chunk is open-ended: rows added past the estimate are still read")
        XCTAssertEqual(planned.map(\.estimatedBytes).reduce(0, +), 10 * 8192)
    }

    func testChunksAreEqualRatherThanAFullRunAndASmallTail() {
        // 193 blocks with 64-block chunks: four of 49/49/49/46, not 64/64/64/1.
        let planned = chunks(BackupPlanner.plan(catalog([193 * 8192]), splitBytes: 64 * 8192, tidRangeScans: true))
            .sorted { $0.chunkIndex < $1.chunkIndex }
        XCTAssertEqual(planned.map(\.startBlock), [0, 49, 98, 147])
        XCTAssertEqual(planned.map(\.endBlock), [49, 98, 147, nil])
    }

    /// Sizes count TOAST: a table of 80 KiB rows and 154 MiB of out-of-line values is split by weight
    /// (its block ranges carry their values), and a 20 MiB TOAST-heavy table is not packed.
    func testSplittingAndPackingWeighTheTablesTOAST() {
        var c = catalog([80 << 10, 16 << 10, 8 << 10])
        c.tables[0].toastBytes = 154 << 20
        c.tables[1].toastBytes = 20 << 20
        let tasks = BackupPlanner.plan(c, splitBytes: 64 << 20, tidRangeScans: true, packBelowBytes: 1 << 20)
        let heavy = chunks(tasks).filter { $0.tableIndex == 0 }.sorted { $0.chunkIndex < $1.chunkIndex }
        XCTAssertEqual(heavy.count, 3, "154 MiB in 64 MiB chunks")
        XCTAssertEqual(heavy.map(\.startBlock), [0, 4, 8])
        XCTAssertEqual(heavy.map(\.endBlock), [4, 8, nil])
        XCTAssertEqual(chunks(tasks).filter { $0.tableIndex == 1 }.count, 1, "a 20 MiB table has an object of its own")
        XCTAssertEqual(chunks(tasks).first { $0.tableIndex == 1 }?.estimatedBytes, (20 << 20) + (16 << 10))
        // Never more chunks than blocks: one block of heap cannot be split, however large its values.
        var single = catalog([8192])
        single.tables[0].toastBytes = 1 << 30
        XCTAssertEqual(chunks(BackupPlanner.plan(single, splitBytes: 64 << 20, tidRangeScans: true)).count, 1)
    }

    func testNoSplittingWithoutTidRangeScans() {
        let planned = chunks(BackupPlanner.plan(catalog([100 * 8192]), splitBytes: 8192, tidRangeScans: false))
        XCTAssertEqual(planned.count, 1)
        XCTAssertNil(planned[0].startBlock)
    }

    func testCopyStatementsQuoteNamesAndBoundChunks() {
        let table = CatalogTable(schema: "Sales", name: "Order \"Lines\"", kind: "table", columns: ["id", "Note"], heapBytes: 0)
        XCTAssertEqual(BackupPlanner.copyStatement(table, TableChunk(tableIndex: 0, chunkIndex: 0, startBlock: nil, endBlock: nil, estimatedBytes: 0)),
                       #"COPY "Sales"."Order ""Lines""" ("id", "Note") TO STDOUT"#)
        XCTAssertEqual(BackupPlanner.copyStatement(table, TableChunk(tableIndex: 0, chunkIndex: 1, startBlock: 3, endBlock: 6, estimatedBytes: 0)),
                       #"COPY (SELECT "id", "Note" FROM ONLY "Sales"."Order ""Lines""" WHERE ctid >= '(3,0)'::tid AND ctid < '(6,0)'::tid) TO STDOUT"#)
        XCTAssertTrue(BackupPlanner.copyStatement(table, TableChunk(tableIndex: 0, chunkIndex: 2, startBlock: 6, endBlock: nil, estimatedBytes: 0))
            .hasSuffix("WHERE ctid >= '(6,0)'::tid) TO STDOUT"))
    }

    private func packs(_ tasks: [BackupTask]) -> [[Int]] {
        tasks.compactMap { if case .tablePack(_, let tables, _) = $0 { return tables } else { return nil } }
    }

    func testSmallTablesArePackedInCatalogOrderWithBoundedPacks() {
        let sizes: [Int64] = Array(repeating: 8192, count: BackupPlanner.tablesPerPack + 3) + [4 << 20, 0]
        let tasks = BackupPlanner.plan(catalog(sizes), splitBytes: 64 << 20, tidRangeScans: true, packBelowBytes: 1 << 20)
        let planned = packs(tasks)
        XCTAssertEqual(planned.map(\.count), [BackupPlanner.tablesPerPack, 4], "at most tablesPerPack tables in a pack")
        XCTAssertEqual(planned.flatMap { $0 }, Array(0..<(BackupPlanner.tablesPerPack + 3)) + [BackupPlanner.tablesPerPack + 4],
                       "in catalog order, each table once; the empty table after the large one joins the open pack")
        XCTAssertEqual(chunks(tasks).map(\.tableIndex), [BackupPlanner.tablesPerPack + 3], "the large table keeps its own object")
    }

    func testPacksCloseAtTheirByteBudget() {
        let tableBytes = BackupPlanner.bytesPerPack / 4 + 1
        let planned = packs(BackupPlanner.plan(catalog(Array(repeating: tableBytes, count: 8)), splitBytes: 1 << 40, tidRangeScans: true,
                                               packBelowBytes: tableBytes + 1))
        XCTAssertEqual(planned.map(\.count), [3, 3, 2])
    }

    func testNoPackingWhenTheThresholdIsZero() {
        let tasks = BackupPlanner.plan(catalog([0, 8192, 16_384]), splitBytes: 64 << 20, tidRangeScans: true)
        XCTAssertTrue(packs(tasks).isEmpty)
        XCTAssertEqual(chunks(tasks).count, 3)
    }
}
