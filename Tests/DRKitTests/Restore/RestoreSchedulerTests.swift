import XCTest
import TestSupport
@testable import DRKit
import Common

final class RestoreSchedulerTests: XCTestCase {
    /// Runs the scheduler with `workers` simulated workers, completing the oldest running task first,
    /// and returns the order in which work started.
    func simulate(_ scheduler: inout RestoreScheduler, workers: Int) -> [RestoreScheduler.Work] {
        var started: [RestoreScheduler.Work] = []
        var running: [Int] = []
        while !scheduler.isFinished {
            while running.count < workers, let (ticket, work) = scheduler.next() {
                started.append(work)
                running.append(ticket)
            }
            XCTAssertFalse(running.isEmpty, "no deadlock: something is always runnable")
            if running.isEmpty { break }
            scheduler.complete(running.removeFirst())
        }
        return started
    }

    func testIndexesOfALoadedTableStartBeforeOtherTablesFinishLoading() {
        var s = RestoreScheduler(
            dataObjects: [(["big"], 0, 50), (["big"], 1, 50), (["big"], 2, 50), (["big"], 3, 50), (["small"], 4, 60)],
            entries: [("small", true), ("big", false), ("big", true), (nil, false)],
            analyze: ["big", "small"])
        let order = simulate(&s, workers: 2)
        let smallIndex = order.firstIndex(of: .ddl(table: "small", entry: 0))!
        let lastBigChunk = order.lastIndex { if case .data(let object) = $0 { return object < 4 } else { return false } }!
        XCTAssertLessThan(smallIndex, lastBigChunk + 1, "small's index does not wait for big's data")
        XCTAssertGreaterThan(order.firstIndex(of: .ddl(table: "big", entry: 1))!, lastBigChunk)
        XCTAssertGreaterThan(order.firstIndex(of: .analyze(table: "big"))!, order.firstIndex(of: .ddl(table: "big", entry: 2))!,
                             "ANALYZE after the table's index builds")
        XCTAssertGreaterThan(order.firstIndex(of: .ddl(table: nil, entry: 3))!, lastBigChunk, "entries on tables without data wait for all data")
        XCTAssertEqual(order.count, 5 + 4 + 2)
    }

    func testLocksKeepExclusiveWorkOnOneTableApart() {
        var s = RestoreScheduler(dataObjects: [(["t"], 0, 1)], entries: [("t", false), ("t", true), ("t", true)], analyze: ["t"])
        XCTAssertEqual(s.next()?.work, .data(object: 0))
        XCTAssertNil(s.next(), "nothing for t until its data is in")
        s.complete(1)
        let first = s.next()!
        let second = s.next()
        if first.work == .ddl(table: "t", entry: 0) {
            XCTAssertNil(second, "ADD CONSTRAINT runs alone on its table")
        } else {
            XCTAssertEqual(second?.work, .ddl(table: "t", entry: first.work == .ddl(table: "t", entry: 1) ? 2 : 1), "two CREATE INDEX side by side")
        }
    }

    func testAPackedTableWaitsForItsWholePack() {
        var s = RestoreScheduler(dataObjects: [(["a", "b"], 0, 10), (["c"], 1, 5)],
                                 entries: [("a", true), ("b", true), ("c", true)], analyze: [])
        XCTAssertEqual(s.next()?.work, .data(object: 0))
        XCTAssertEqual(s.next()?.work, .data(object: 1))
        s.complete(2)
        XCTAssertEqual(s.next()?.work, .ddl(table: "c", entry: 2), "c's own object is in")
        XCTAssertNil(s.next(), "a and b wait for the pack that holds them both")
        s.complete(1)
        let rest = [s.next()?.work, s.next()?.work]
        XCTAssertEqual(Set(rest.compactMap { $0.map { "\($0)" } }).count, 2)
        XCTAssertTrue(rest.contains(.ddl(table: "a", entry: 0)) && rest.contains(.ddl(table: "b", entry: 1)))
    }
}

extension RestoreSchedulerTests {
    /// Thousands of tables, workers finishing in a scrambled order: every task runs once, none before
    /// what it waits for, and no two tasks with incompatible locks on one table at once.
    func testManyTablesKeepEveryRuleUnderAnyCompletionOrder() {
        let tables = (0..<1500).map { "public.t\($0)" }
        var dataObjects: [(tables: [String], object: Int, priority: Int64)] = []
        for pack in stride(from: 0, to: 1000, by: 250) { dataObjects.append((Array(tables[pack..<pack + 250]), dataObjects.count, 10)) }
        for table in tables[1000...] { dataObjects.append(([table], dataObjects.count, Int64(table.count))) }
        for table in tables[1000..<1020] {  // large tables, split into chunks
            for _ in 0..<3 { dataObjects.append(([table], dataObjects.count, 100)) }
        }
        var entries: [(table: String?, isIndex: Bool)] = []
        for table in tables { entries += [(table, true), (table, false), (table, true)] }
        entries += [(nil, false), ("public.no_data", false)]
        var scheduler = RestoreScheduler(dataObjects: dataObjects, entries: entries, analyze: tables + ["public.no_data"])

        var random = SplitMix(seed: 42)
        var running: [(ticket: Int, work: RestoreScheduler.Work)] = []
        var loaded: [String: Int] = [:]
        var indexesDone: [String: Int] = [:]
        var dataLeft = dataObjects.count
        var started = 0
        func tableOf(_ work: RestoreScheduler.Work) -> (String, Bool)? {
            switch work {
            case .data: return nil
            case .ddl(let table?, let entry): return (table, entries[entry].isIndex)
            case .ddl(nil, _): return nil
            case .analyze(let table): return (table, false)
            }
        }
        while !scheduler.isFinished {
            while running.count < 3, let claimed = scheduler.next() {
                started += 1
                switch claimed.work {
                case .data: break
                case .ddl(let table?, _):
                    XCTAssertEqual(loaded[table], dataObjects.filter { $0.tables.contains(table) }.count, "\(claimed.work) before its data")
                case .ddl(nil, _):
                    XCTAssertEqual(dataLeft, 0, "\(claimed.work) before all data")
                case .analyze(let table):
                    XCTAssertEqual(indexesDone[table, default: 0], table == "public.no_data" ? 0 : 2, "ANALYZE of \(table) before its indexes")
                }
                if let (table, shared) = tableOf(claimed.work) {
                    for other in running {
                        guard let (otherTable, otherShared) = tableOf(other.work), otherTable == table else { continue }
                        XCTAssertTrue(shared && otherShared, "\(claimed.work) beside \(other.work)")
                    }
                }
                running.append(claimed)
            }
            guard !running.isEmpty else { return XCTFail("nothing runnable but not finished") }
            let done = running.remove(at: Int(random.next() % UInt32(running.count)))
            switch done.work {
            case .data(let object):
                for table in dataObjects[object].tables { loaded[table, default: 0] += 1 }
                dataLeft -= 1
            case .ddl(let table?, let entry) where entries[entry].isIndex:
                indexesDone[table, default: 0] += 1
            default: break
            }
            scheduler.complete(done.ticket)
        }
        XCTAssertEqual(started, dataObjects.count + entries.count + tables.count + 1)
    }
}
