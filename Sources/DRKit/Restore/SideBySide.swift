import PostgresClient
import Foundation
import Common

/// Statements a worker set aside because they failed only for running beside other work, with the
/// position they take when they run again alone.
final class SetAside: Sendable {
    private let items = Locked([(order: Int, sequence: Int, sql: String)]())

    /// `order`: where the statement runs in the rerun (script order); equal orders keep the order added.
    func add(_ statements: [String], order: Int) {
        items.withLock { list in
            for sql in statements { list.append((order, list.count, sql)) }
        }
    }

    var statements: [String] { items.current.sorted { ($0.order, $0.sequence) < ($1.order, $1.sequence) }.map(\.sql) }
}

/// The restore's one way to run DDL side by side: `jobs` workers, each on its own session, claim work
/// from one board; a statement that fails only because it ran beside other work (two ALTER TABLEs that
/// deadlock, two entries racing for one type name) is set aside by `perform`; once the board is done the
/// set-aside statements run again alone, in order, on one session, where an error is final. The first
/// real error stops every worker and is the one reported, not a worker's "stopped" that came first.
struct SideBySide<Schedule> {
    let board: WorkBoard<Schedule>
    let jobs: Int
    /// A new session with the restore's settings and the script's preamble.
    let session: @Sendable () throws -> Connection
    /// What the work is, for an error of a statement run again alone ("post-data DDL").
    let context: String

    func run<Work: Sendable>(claim: @escaping @Sendable (inout Schedule) -> Work?, complete: @escaping @Sendable (inout Schedule, Work) -> Void,
                             perform: @escaping @Sendable (Connection, Work, SetAside) throws -> Void) throws {
        let setAside = SetAside()
        let board = self.board, session = self.session
        do {
            try Workers.run(count: jobs) { _ in
                do {
                    let connection = try session()
                    while let work = board.claim(claim) {
                        try perform(connection, work, setAside)
                        board.update { complete(&$0, work) }
                    }
                } catch {
                    board.fail(error)
                    throw error
                }
            }
        } catch {
            throw board.failure ?? error
        }
        let again = setAside.statements
        guard !again.isEmpty else { return }
        do {
            let alone = try session()
            for sql in again { try alone.execute(sql) }
        } catch { throw DRKitError.wrap(error, context) }
    }
}

/// A plain list handed out in order, for work with no dependencies between its items.
struct ListSchedule {
    private(set) var next = 0
    private var done = 0
    let count: Int

    init(count: Int) { self.count = count }

    var isFinished: Bool { done == count }

    mutating func claim() -> Int? {
        guard next < count else { return nil }
        defer { next += 1 }
        return next
    }

    mutating func complete() { done += 1 }
}
