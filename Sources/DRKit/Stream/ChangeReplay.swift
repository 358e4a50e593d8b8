import Archive
import PostgresClient
import Foundation
import Common

public struct ReplayReport: Sendable, Codable {
    public var baseBackupId: String
    public var basePosition: String
    public var lineage: String
    public var target: String
    public var transactions: Int
    public var changes: Int
    /// The commit time and position of the last transaction replayed (the base's own when none was).
    public var reachedCommitTime: String?
    public var reachedPosition: String
    public var seconds: Double
    public var transactionsPerSecond: Double
}

/// Replays archived transactions onto a restored base, in commit order, each source transaction in a
/// transaction of its own, triggers and foreign key checks off (as logical replication applies them).
/// An UPDATE or DELETE that finds no row means the target is not what the archive describes: the replay
/// stops there, naming the table and the commit, rather than go on diverging.
struct ChangeReplay {
    let plan: PointInTimePlan
    let archive: StreamArchive
    let dataKey: [UInt8]?
    /// `schema.table` names to replay (a partial restore); nil: every table.
    let tables: Set<String>?
    /// `--into-schema`: the source schema and its new name.
    let renamedSchema: (from: String, to: String)?
    let console: Console
    let showProgress: Bool

    /// Source transactions sent to the server in one round trip (each still its own transaction).
    static let batchBytes = 1 << 20

    func run(on connection: Connection) throws -> ReplayReport {
        let started = Date()
        try connection.execute("SET session_replication_role = replica; SET synchronous_commit = off; SET standard_conforming_strings = on")
        var state = State()
        var chain = StreamArchive.ChainCheck(lineage: plan.lineage)
        if let predecessor = plan.predecessor {
            // The first segment must name the bytes of the one before it: hash those without opening them.
            let hasher = HashingSink(next: nil)
            do { try archive.repository.store.read(key: predecessor.key, into: hasher); try hasher.finish() } catch {
                throw DRKitError.wrap(error, "reading change segment \(predecessor.name.number)")
            }
            chain = StreamArchive.ChainCheck(lineage: plan.lineage, previous: (predecessor, hasher.hexDigest, predecessor.name.endPosition))
        }
        var lastSequences: [SequenceValue]?
        var done = false
        for (index, segment) in plan.segments.enumerated() where !done {
            let (decoded, sha256) = try archive.read(segment, lineage: plan.lineage, dataKey: dataKey)
            try chain.accept(segment, header: decoded.header, sha256: sha256)
            if index == 0 { state.relations = Dictionary(decoded.header.relations.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b }) }
            let before = state.transactions
            done = try replay(decoded.messages, state: &state, on: connection)
            if state.transactions > before { lastSequences = decoded.header.sequences }
            if showProgress { console.note("replay: segment \(segment.name.number) of lineage \(plan.lineage.lineage), \(state.transactions) transactions so far") }
        }
        try state.send(on: connection, force: true)
        if let lastSequences { try advanceSequences(lastSequences, on: connection) }
        try connection.execute("SET session_replication_role = DEFAULT")
        let seconds = Date().timeIntervalSince(started)
        return ReplayReport(baseBackupId: plan.base.summary.backupId, basePosition: plan.basePosition.description, lineage: plan.lineage.lineage,
                            target: plan.target.description, transactions: state.transactions, changes: state.changes,
                            reachedCommitTime: state.reachedCommit.map(CommitTime.iso8601), reachedPosition: (state.reachedPosition ?? plan.basePosition).description,
                            seconds: seconds, transactionsPerSecond: seconds > 0 ? Double(state.transactions) / seconds : 0)
    }

    struct State {
        var relations: [UInt32: PgOutput.Relation] = [:]
        /// Tables whose definition changed at a position the replay applies: rows past it cannot be replayed.
        var changedDefinitions: [UInt32: Int64] = [:]
        var checkedTargets: Set<UInt32> = []
        var including = false
        var commitTime: Int64 = 0
        var commitLSN = LSN.zero
        var transactions = 0
        var changes = 0
        var reachedCommit: Int64?
        var reachedPosition: LSN?
        var sql = ""
        /// One entry per statement sent: the row count it must report (nil: not checked), and what it was.
        var expected: [(rows: Int64?, what: String)] = []
        var pendingInsert: (relation: UInt32, columns: String, values: [String])?

        mutating func statement(_ text: String, expect rows: Int64? = nil, what: String = "") {
            sql += text
            sql += ";\n"
            expected.append((rows, what))
        }

        mutating func send(on connection: Connection, force: Bool) throws {
            guard !sql.isEmpty, force || sql.utf8.count >= ChangeReplay.batchBytes else { return }
            let counts: [Int64?]
            do { counts = try connection.executeCountingRows(sql) } catch {
                throw DRKitError(.database, "replaying the change archive failed: \(DRKitError.wrap(error).message)", cause: error)
            }
            for (count, expectation) in zip(counts, expected) {
                if let rows = expectation.rows, count != rows {
                    throw DRKitError(.integrity, "replay diverged: \(expectation.what) changed \(count ?? 0) rows on the target, the source changed \(rows); the restored base and the archive do not agree (was the table changed outside the stream, or its definition altered?)")
                }
            }
            sql = ""
            expected = []
        }
    }

    /// Returns true once the target is reached.
    private func replay(_ messages: [ArraySlice<UInt8>], state: inout State, on connection: Connection) throws -> Bool {
        for frame in messages {
            guard let kind = frame.first else { continue }
            if kind == UInt8(ascii: "B") {
                guard case .begin(let final, let time, _) = try PgOutput.decode(Array(frame)) else { continue }
                switch plan.target {
                case .time(let micros) where time > micros: return true
                case .lsn(let lsn) where final > lsn: return true
                default: break
                }
                state.including = final >= plan.basePosition
                state.commitTime = time
                state.commitLSN = final
                if state.including { state.statement("BEGIN") }
                continue
            }
            let message = try PgOutput.decode(Array(frame))
            switch message {
            case .relation(let relation):
                if let known = state.relations[relation.id], !known.sameShape(as: relation) {
                    if state.including { state.changedDefinitions[relation.id] = state.commitTime } else { state.changedDefinitions[relation.id] = nil }
                    state.checkedTargets.remove(relation.id)
                }
                state.relations[relation.id] = relation
            case .commit(_, let end, let time):
                guard state.including else { continue }
                flushInsert(&state)
                state.statement("COMMIT")
                state.transactions += 1
                state.reachedCommit = time
                state.reachedPosition = end
                try state.send(on: connection, force: false)
            case .insert, .update, .delete, .truncate:
                guard state.including else { continue }
                try apply(message, state: &state, on: connection)
            case .begin, .other:
                continue
            }
        }
        return false
    }

    private func relation(_ id: UInt32, state: inout State, on connection: Connection) throws -> PgOutput.Relation? {
        guard let relation = state.relations[id] else {
            throw DRKitError(.integrity, "the change archive names table \(id) before describing it (commit at \(CommitTime.iso8601(state.commitTime)))")
        }
        let schema = renamedSchema.map { relation.schema == $0.from ? $0.to : relation.schema } ?? relation.schema
        if let tables, !tables.contains("\(schema).\(relation.name)") { return nil }
        if let changed = state.changedDefinitions[id] {
            throw DRKitError(.usage, "the definition of \(relation.schema).\(relation.name) changed at \(CommitTime.iso8601(changed)) while the stream ran: rows after that cannot be replayed onto the older definition. Restore to a time before it, or from a base backup taken after it (docs/runbooks/point-in-time-recovery.md)")
        }
        if !state.checkedTargets.contains(id) {
            try checkTarget(relation, on: connection)
            state.checkedTargets.insert(id)
        }
        return relation
    }

    /// The restored table must have the columns the archive's rows have.
    private func checkTarget(_ relation: PgOutput.Relation, on connection: Connection) throws {
        let name = qualified(relation)
        let exists = try connection.query("SELECT to_regclass($1) IS NOT NULL", [name]).scalar == "t"
        guard exists else {
            throw DRKitError(.usage, "the change archive has rows of \(relation.schema).\(relation.name), which the base backup does not have (created while the stream ran): restore to a time before it was created, or from a base backup taken after")
        }
        let columns = try connection.query("""
            SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
              AND \(connection.serverVersionNumber >= 120000 ? "attgenerated = ''" : "true") ORDER BY attnum
            """, [name]).rows.compactMap { $0[0] }
        guard Set(columns) == Set(relation.columns.map(\.name)) else {
            throw DRKitError(.usage, "the definition of \(relation.schema).\(relation.name) in the base backup (\(columns.joined(separator: ", "))) differs from the archive's rows (\(relation.columns.map(\.name).joined(separator: ", "))): its definition changed while the stream ran; restore from a base backup taken after the change")
        }
    }

    private func qualified(_ relation: PgOutput.Relation) -> String {
        let schema = renamedSchema.map { relation.schema == $0.from ? $0.to : relation.schema } ?? relation.schema
        return Connection.qualified(schema, relation.name)
    }

    private func apply(_ message: PgOutput.Message, state: inout State, on connection: Connection) throws {
        state.changes += 1
        switch message {
        case .insert(let id, let new):
            guard let relation = try relation(id, state: &state, on: connection) else { return }
            var columns: [String] = []
            var values: [String] = []
            for (column, value) in zip(relation.columns, new) {
                guard let literal = literal(value) else { continue }
                columns.append(Connection.quoteIdentifier(column.name))
                values.append(literal)
            }
            let columnList = columns.joined(separator: ", ")
            let row = "(" + values.joined(separator: ", ") + ")"
            if let pending = state.pendingInsert, pending.relation == id, pending.columns == columnList, pending.values.count < 1000 {
                state.pendingInsert!.values.append(row)
            } else {
                flushInsert(&state)
                state.pendingInsert = (id, columnList, [row])
            }
        case .update(let id, let old, let new):
            flushInsert(&state)
            guard let relation = try relation(id, state: &state, on: connection) else { return }
            let assignments = zip(relation.columns, new).compactMap { column, value in
                literal(value).map { "\(Connection.quoteIdentifier(column.name)) = \($0)" }
            }
            guard !assignments.isEmpty else { return }
            let (condition, what) = try identify(relation, old: old ?? new, keyOnly: old == nil || relation.replicaIdentity != "f")
            state.statement("UPDATE \(qualified(relation)) SET \(assignments.joined(separator: ", ")) WHERE \(condition)", expect: 1,
                            what: "UPDATE of \(relation.schema).\(relation.name) \(what) (commit at \(CommitTime.iso8601(state.commitTime)))")
        case .delete(let id, let old):
            flushInsert(&state)
            guard let relation = try relation(id, state: &state, on: connection) else { return }
            let (condition, what) = try identify(relation, old: old, keyOnly: relation.replicaIdentity != "f")
            state.statement("DELETE FROM \(qualified(relation)) WHERE \(condition)", expect: 1,
                            what: "DELETE from \(relation.schema).\(relation.name) \(what) (commit at \(CommitTime.iso8601(state.commitTime)))")
        case .truncate(let ids, let cascade, let restartIdentity):
            flushInsert(&state)
            let names = try ids.compactMap { try relation($0, state: &state, on: connection) }.map(qualified)
            guard !names.isEmpty else { return }
            state.statement("TRUNCATE ONLY \(names.joined(separator: ", "))\(restartIdentity ? " RESTART IDENTITY" : "")\(cascade ? " CASCADE" : "")")
        default:
            break
        }
    }

    private func flushInsert(_ state: inout State) {
        guard let pending = state.pendingInsert, let relation = state.relations[pending.relation] else { return }
        state.pendingInsert = nil
        state.statement("INSERT INTO \(qualified(relation)) (\(pending.columns)) VALUES \(pending.values.joined(separator: ", "))")
    }

    /// Types without an equality operator cannot take part in a REPLICA IDENTITY FULL match.
    static let typesWithoutEquality: Set<UInt32> = [114, 142, 600, 601, 602, 603, 604, 628, 718, 199, 143]

    /// The WHERE clause that finds the row: its key columns, or (REPLICA IDENTITY FULL) one row equal
    /// in every comparable column, by its ctid.
    private func identify(_ relation: PgOutput.Relation, old: [PgOutput.Value], keyOnly: Bool) throws -> (String, String) {
        var terms: [String] = []
        var shown: [String] = []
        for (column, value) in zip(relation.columns, old) where (keyOnly ? column.isKey : !Self.typesWithoutEquality.contains(column.typeOid)) {
            let name = Connection.quoteIdentifier(column.name)
            switch value {
            case .null: terms.append("\(name) IS NULL")
            case .unchanged: continue
            case .text(let text):
                terms.append("\(name) = \(Connection.quoteLiteral(text))")
                if shown.count < 3 { shown.append("\(column.name)=\(text.prefix(40))") }
            }
        }
        guard !terms.isEmpty else {
            throw DRKitError(.integrity, "the change archive has an UPDATE or DELETE of \(relation.schema).\(relation.name) without a key to find the row")
        }
        let what = "(" + shown.joined(separator: ", ") + ")"
        if keyOnly { return (terms.joined(separator: " AND "), what) }
        return ("ctid = (SELECT ctid FROM \(qualified(relation)) WHERE \(terms.joined(separator: " AND ")) LIMIT 1)", what)
    }

    private func literal(_ value: PgOutput.Value) -> String? {
        switch value {
        case .null: return "NULL"
        case .unchanged: return nil
        case .text(let text): return Connection.quoteLiteral(text)
        }
    }

    /// Sequences are not replicated: each is moved to at least the value recorded at the end of the
    /// last segment replayed (never backwards).
    private func advanceSequences(_ sequences: [SequenceValue], on connection: Connection) throws {
        for sequence in sequences {
            let schema = renamedSchema.map { sequence.schema == $0.from ? $0.to : sequence.schema } ?? sequence.schema
            let name = Connection.qualified(schema, sequence.name)
            guard try connection.query("SELECT to_regclass($1) IS NOT NULL", [name]).scalar == "t" else { continue }
            do {
                try connection.execute("SELECT pg_catalog.setval(\(Connection.quoteLiteral(name)), GREATEST(\(Connection.quoteLiteral(sequence.lastValue))::bigint, (SELECT last_value FROM \(name))), true)")
            } catch { throw DRKitError.wrap(error, "advancing sequence \(sequence.schema).\(sequence.name)") }
        }
    }
}
