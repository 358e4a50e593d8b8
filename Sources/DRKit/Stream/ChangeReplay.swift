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
    /// Captured DDL commands run at their place in the stream.
    public var schemaChanges: Int
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
        state.searchPath = try connection.query("SELECT current_setting('search_path')").scalar ?? "public"
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
        flushInserts(&state)
        try state.send(on: connection, force: true)
        for statement in state.identityAlways { try connection.execute(statement) }
        if let lastSequences { try advanceSequences(lastSequences, on: connection) }
        try connection.execute("SET session_replication_role = DEFAULT")
        let seconds = Date().timeIntervalSince(started)
        return ReplayReport(baseBackupId: plan.base.summary.backupId, basePosition: plan.basePosition.description, lineage: plan.lineage.lineage,
                            target: plan.target.description, transactions: state.transactions, changes: state.changes, schemaChanges: state.schemaChanges,
                            reachedCommitTime: state.reachedCommit.map(CommitTime.iso8601), reachedPosition: (state.reachedPosition ?? plan.basePosition).description,
                            seconds: seconds, transactionsPerSecond: seconds > 0 ? Double(state.transactions) / seconds : 0)
    }

    struct State {
        var relations: [UInt32: PgOutput.Relation] = [:]
        /// Tables whose definition changed at a position the replay applies: rows past it cannot be replayed.
        var changedDefinitions: [UInt32: Int64] = [:]
        var checkedTargets: Set<UInt32> = []
        /// Captured DDL run so far, and that count when each relation was last described: a relation
        /// described anew after a command ran has the definition the command gave it.
        var schemaChanges = 0
        var describedAfter: [UInt32: Int] = [:]
        /// The commands of one query string (one key) seen so far, run once the next frame is not one of them.
        var commands: [SchemaCapture.Command] = []
        /// The replay session's own search_path, put back after each captured command.
        var searchPath = "public"
        /// Statements that put back the identity columns made BY DEFAULT for the replay.
        var identityAlways: [String] = []
        var including = false
        var commitTime: Int64 = 0
        var commitLSN = LSN.zero
        var transactions = 0
        var changes = 0
        var reachedCommit: Int64?
        var reachedPosition: LSN?
        var sql = ""
        /// One entry per statement sent: the row count it must report (nil: not checked), and what it was
        /// (described only when it fails).
        var expected: [Check?] = []
        /// Rows to insert, per table, sent as multi-row INSERTs: a table's rows stay in order among its own
        /// statements (its buffer is sent before any other statement on it), and the batch is one
        /// transaction with triggers off, so the order between tables cannot change what it commits.
        var pendingInserts: [UInt32: (columns: String, values: [String])] = [:]
        var pendingInsertBytes = 0

        mutating func statement(_ text: String, check: Check? = nil) {
            sql += text
            sql += ";\n"
            expected.append(check)
        }

        /// Sends the batch as one transaction: the source transactions in it are applied together, so
        /// each one is applied whole (and none from the next batch until this one committed). One commit
        /// per batch instead of one per source transaction is what makes the replay outpace the load.
        mutating func send(on connection: Connection, force: Bool) throws {
            guard !sql.isEmpty, force || sql.utf8.count >= ChangeReplay.batchBytes else { return }
            precondition(pendingInserts.isEmpty, "inserts are flushed before a batch is sent")
            sql = "BEGIN;\n" + sql + "COMMIT"
            expected.insert(nil, at: 0)
            expected.append(nil)
            let counts: [Int64?]
            do { counts = try connection.executeCountingRows(sql) } catch {
                throw DRKitError(.database, "replaying the change archive failed: \(DRKitError.wrap(error).message)", cause: error)
            }
            for (count, check) in zip(counts, expected) {
                if let check, count != 1 {
                    throw DRKitError(.integrity, "replay diverged: \(check.describe(relations)) changed \(count ?? 0) rows on the target, the source changed 1; the restored base and the archive do not agree (was the table changed outside the stream, or its definition altered?)")
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
            if kind == UInt8(ascii: "M"), state.including,
               case .message(true, SchemaCapture.messagePrefix, let content) = try PgOutput.decode(Array(frame)) {
                let command = try SchemaCapture.Command.decode(content)
                if let first = state.commands.first, first.key != command.key { try runCommands(&state, on: connection) }
                state.commands.append(command)
                continue
            }
            if !state.commands.isEmpty { try runCommands(&state, on: connection) }
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
                continue
            }
            let message = try PgOutput.decode(Array(frame))
            switch message {
            case .relation(let relation):
                let explained = state.schemaChanges > (state.describedAfter[relation.id] ?? 0)
                state.describedAfter[relation.id] = state.schemaChanges
                if let known = state.relations[relation.id], !known.sameShape(as: relation) {
                    if state.including && !explained { state.changedDefinitions[relation.id] = state.commitTime } else { state.changedDefinitions[relation.id] = nil }
                    state.checkedTargets.remove(relation.id)
                }
                state.relations[relation.id] = relation
            case .commit(_, let end, let time):
                guard state.including else { continue }
                state.transactions += 1
                state.reachedCommit = time
                state.reachedPosition = end
                if state.sql.utf8.count + state.pendingInsertBytes >= Self.batchBytes {
                    flushInserts(&state)
                    try state.send(on: connection, force: true)
                }
            case .insert, .update, .delete, .truncate:
                guard state.including else { continue }
                try apply(message, state: &state, on: connection)
            case .begin, .message, .other:
                continue
            }
        }
        return false
    }

    /// Runs the captured DDL of one query string where the source ran it: after the rows before it
    /// (sent first), as the role that ran it when the target has that role, with its search_path.
    private func runCommands(_ state: inout State, on connection: Connection) throws {
        let commands = state.commands
        state.commands = []
        guard let first = commands.first else { return }
        let when = "a schema change committed at \(CommitTime.iso8601(state.commitTime)) (\(first.tag))"
        let statements: [String]
        switch SchemaCapture.verdict(for: commands) {
        case .refuse(let why):
            throw DRKitError(.usage, "\(when) cannot be replayed: \(why). \(window(after: state.commitTime))")
        case .replay(let list):
            statements = list
        }
        if let tables {
            // A partial restore runs no DDL: one that names a chosen table is refused (its rows after
            // it would not fit, or it would be missing), any other does not concern it.
            let names = Set(tables.compactMap { $0.split(separator: ".").last.map { $0.lowercased() } })
            guard let touched = names.first(where: { name in statements.contains { $0.lowercased().contains(name) } }) else { return }
            throw DRKitError(.usage, "\(when) concerns \(touched), and a restore of chosen tables does not run DDL: restore the whole database, or to a time before it, or from the first base taken after it. \(window(after: state.commitTime))")
        }
        if renamedSchema != nil {
            throw DRKitError(.usage, "\(when) is replayed only into the database's own schemas (not with --into-schema). \(window(after: state.commitTime))")
        }
        flushInserts(&state)
        try state.send(on: connection, force: true)
        // The DDL sees the definitions the source had: identity columns back to ALWAYS first (rows after
        // it check their tables again).
        for statement in state.identityAlways { try connection.execute(statement) }
        state.identityAlways = []
        state.checkedTargets = []
        let asRole = try connection.query(
            "SELECT pg_has_role(current_user, oid, 'MEMBER')::text FROM pg_roles WHERE rolname = $1", [first.role]).scalar == "true"
        do {
            _ = try connection.query("SELECT pg_catalog.set_config('search_path', $1, false)", [first.searchPath])
            if asRole { try connection.execute("SET ROLE \(Connection.quoteIdentifier(first.role))") }
            for statement in statements { try connection.execute(statement) }
            if asRole { try connection.execute("RESET ROLE") }
            _ = try connection.query("SELECT pg_catalog.set_config('search_path', $1, false)", [state.searchPath])
        } catch {
            throw DRKitError(.database, "replaying \(when) failed: \(DRKitError.wrap(error).message)", cause: error)
        }
        state.schemaChanges += 1
    }

    private func relation(_ id: UInt32, state: inout State, on connection: Connection) throws -> PgOutput.Relation? {
        guard let relation = state.relations[id] else {
            throw DRKitError(.integrity, "the change archive names table \(id) before describing it (commit at \(CommitTime.iso8601(state.commitTime)))")
        }
        let schema = renamedSchema.map { relation.schema == $0.from ? $0.to : relation.schema } ?? relation.schema
        if let tables, !tables.contains("\(schema).\(relation.name)") { return nil }
        if let changed = state.changedDefinitions[id] {
            throw DRKitError(.usage, "the definition of \(relation.schema).\(relation.name) changed at \(CommitTime.iso8601(changed)) while the stream ran: rows after that cannot be replayed onto the older definition. \(window(after: changed)) (docs/runbooks/point-in-time-recovery.md)")
        }
        if !state.checkedTargets.contains(id) {
            state.identityAlways += try checkTarget(relation, on: connection, firstUse: state.commitTime)
            state.checkedTargets.insert(id)
        }
        return relation
    }

    /// The restored table must have the columns the archive's rows have. Its `GENERATED ALWAYS AS
    /// IDENTITY` columns take the archive's values: they are made `BY DEFAULT` for the replay (returned,
    /// to be put back after it), since ALWAYS refuses any value but its own.
    private func checkTarget(_ relation: PgOutput.Relation, on connection: Connection, firstUse: Int64) throws -> [String] {
        let name = qualified(relation)
        let exists = try connection.query("SELECT to_regclass($1) IS NOT NULL", [name]).scalar == "t"
        guard exists else {
            throw DRKitError(.usage, "the change archive has rows of \(relation.schema).\(relation.name) from \(CommitTime.iso8601(firstUse)) on, which base backup \(plan.base.summary.backupId) does not have (created while the stream ran). \(window(after: firstUse))")
        }
        let columns = try connection.query("""
            SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
              AND \(connection.serverVersionNumber >= 120000 ? "attgenerated = ''" : "true") ORDER BY attnum
            """, [name]).rows.compactMap { $0[0] }
        guard Set(columns) == Set(relation.columns.map(\.name)) else {
            throw DRKitError(.usage, "the definition of \(relation.schema).\(relation.name) in the base backup (\(columns.joined(separator: ", "))) differs from the archive's rows (\(relation.columns.map(\.name).joined(separator: ", "))): its definition changed while the stream ran; restore from a base backup taken after the change")
        }
        let always = try connection.query("""
            SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attidentity = 'a'
            """, [name]).rows.compactMap { $0[0] }
        return try always.map { column in
            let statement = "ALTER TABLE \(name) ALTER COLUMN \(Connection.quoteIdentifier(column)) SET GENERATED"
            try connection.execute(statement + " BY DEFAULT")
            return statement + " ALWAYS"
        }
    }

    /// The times a restore can reach around a change at `time`: before it, or from the first base taken after it.
    private func window(after time: Int64) -> String {
        guard let next = plan.laterBases.first(where: { CommitTime.micros($0.snapshotTime) > time }) else {
            return "Restore to a time before it; no base backup was taken after it yet (`drkit stream` takes one when it sees the change, or run `drkit backup`)."
        }
        return "Restore to a time before it, or at or after \(Timestamps.iso8601(next.snapshotTime)) (base backup \(next.backupId), taken after it); the times in between cannot be restored to."
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
            if let pending = state.pendingInserts[id], pending.columns != columnList || pending.values.count >= 1000 {
                flushInserts(&state, of: id)
            }
            state.pendingInserts[id, default: (columnList, [])].values.append(row)
            state.pendingInsertBytes += row.utf8.count
        case .update(let id, let old, let new):
            flushInserts(&state, of: id)
            guard let relation = try relation(id, state: &state, on: connection) else { return }
            // Without an old key the key did not change: setting it again would only cost index checks.
            let keyUnchanged = old == nil && relation.replicaIdentity != "f"
            let assignments = zip(relation.columns, new).compactMap { column, value -> String? in
                guard !(keyUnchanged && column.isKey) else { return nil }
                return literal(value).map { "\(Connection.quoteIdentifier(column.name)) = \($0)" }
            }
            guard !assignments.isEmpty else { return }
            let condition = try identify(relation, old: old ?? new, keyOnly: old == nil || relation.replicaIdentity != "f")
            state.statement("UPDATE \(qualified(relation)) SET \(assignments.joined(separator: ", ")) WHERE \(condition)",
                            check: Check(verb: "UPDATE of", relation: id, values: old ?? new, commitTime: state.commitTime))
        case .delete(let id, let old):
            flushInserts(&state, of: id)
            guard let relation = try relation(id, state: &state, on: connection) else { return }
            let condition = try identify(relation, old: old, keyOnly: relation.replicaIdentity != "f")
            state.statement("DELETE FROM \(qualified(relation)) WHERE \(condition)",
                            check: Check(verb: "DELETE from", relation: id, values: old, commitTime: state.commitTime))
        case .truncate(let ids, let cascade, let restartIdentity):
            flushInserts(&state)  // CASCADE reaches other tables
            let names = try ids.compactMap { try relation($0, state: &state, on: connection) }.map(qualified)
            guard !names.isEmpty else { return }
            state.statement("TRUNCATE ONLY \(names.joined(separator: ", "))\(restartIdentity ? " RESTART IDENTITY" : "")\(cascade ? " CASCADE" : "")")
        default:
            break
        }
    }

    /// Writes the buffered rows of one table (`of`), or of every table, as INSERT statements.
    private func flushInserts(_ state: inout State, of only: UInt32? = nil) {
        for id in only.map({ [$0] }) ?? Array(state.pendingInserts.keys) {
            guard let pending = state.pendingInserts.removeValue(forKey: id), let relation = state.relations[id] else { continue }
            state.pendingInsertBytes -= pending.values.reduce(0) { $0 + $1.utf8.count }
            state.statement("INSERT INTO \(qualified(relation)) (\(pending.columns)) VALUES \(pending.values.joined(separator: ", "))")
        }
    }

    /// Types without an equality operator cannot take part in a REPLICA IDENTITY FULL match.
    static let typesWithoutEquality: Set<UInt32> = [114, 142, 600, 601, 602, 603, 604, 628, 718, 199, 143]

    /// The WHERE clause that finds the row: its key columns, or (REPLICA IDENTITY FULL) one row equal
    /// in every comparable column, by its ctid.
    private func identify(_ relation: PgOutput.Relation, old: [PgOutput.Value], keyOnly: Bool) throws -> String {
        var terms: [String] = []
        for (column, value) in zip(relation.columns, old) where (keyOnly ? column.isKey : !Self.typesWithoutEquality.contains(column.typeOid)) {
            let name = Connection.quoteIdentifier(column.name)
            switch value {
            case .null: terms.append("\(name) IS NULL")
            case .unchanged: continue
            case .text(let text): terms.append("\(name) = \(Connection.quoteLiteral(text))")
            }
        }
        guard !terms.isEmpty else {
            throw DRKitError(.integrity, "the change archive has an UPDATE or DELETE of \(relation.schema).\(relation.name) without a key to find the row")
        }
        if keyOnly { return terms.joined(separator: " AND ") }
        return "ctid = (SELECT ctid FROM \(qualified(relation)) WHERE \(terms.joined(separator: " AND ")) LIMIT 1)"
    }

    /// An UPDATE or DELETE that must change exactly one row; described only when it does not.
    struct Check {
        var verb: String
        var relation: UInt32
        var values: [PgOutput.Value]
        var commitTime: Int64

        func describe(_ relations: [UInt32: PgOutput.Relation]) -> String {
            guard let relation = relations[self.relation] else { return "\(verb) table \(self.relation)" }
            let shown = zip(relation.columns, values).filter { $0.0.isKey || relation.replicaIdentity == "f" }.prefix(3).map { column, value -> String in
                if case .text(let text) = value { return "\(column.name)=\(text.prefix(40))" }
                return "\(column.name)=NULL"
            }
            return "\(verb) \(relation.schema).\(relation.name) (\(shown.joined(separator: ", "))) (commit at \(CommitTime.iso8601(commitTime)))"
        }
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
