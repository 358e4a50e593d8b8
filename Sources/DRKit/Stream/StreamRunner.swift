import Archive
import ObjectStorage
import PostgresClient
import Foundation
import Common

public struct StreamOptions: Sendable {
    public var conninfo: String
    public var key: KeySource?
    /// age recipients instead of (or beside) `key`: the host cannot reopen a lineage's data key, so
    /// each run with recipients alone starts a new lineage (with its own base) at the slot's position.
    public var recipients: [Age.Recipient] = []
    /// Signs the base backups' retention facts.
    public var signingKey: Minisign.SecretKey?
    public var codec: Codec = .default
    /// A segment is written at least this often while there are committed changes to store.
    public var flushInterval: Double = 10
    /// ...and sooner when its committed changes reach this size.
    public var maxSegmentBytes = 64 << 20
    /// Tables without a key that may be published with REPLICA IDENTITY FULL (`--replica-identity-full`).
    public var replicaIdentityFull: [String] = []
    /// Take a linked base backup this often (`--base-every`); nil: only when the lineage has none.
    public var baseEvery: Double?
    /// Create (or keep) drkit's event triggers that put DDL in the stream, so that restores replay it
    /// (`--no-schema-capture`: never create them; schema changes then fall back to a new base).
    public var captureSchemaChanges = true
    public var baseJobs = 2
    public var metrics = MetricsPublisher()
    public var showProgress = true

    public init(conninfo: String, key: KeySource?) {
        self.conninfo = conninfo
        self.key = key
    }
}

public struct StreamReport: Sendable {
    public var lineage: String
    public var segments: Int
    public var transactions: Int
    public var lastCommit: Int64?
    public var basesTaken: [String]
}

/// `drkit stream`: a logical replication slot (pgoutput) and a publication on the source, the decoded
/// committed transactions written to the repository as change segments, and a position confirmed to
/// the server only once the segment holding it is durable. Stops cleanly when `stopRequested` says so.
public final class StreamRunner: @unchecked Sendable {
    let options: StreamOptions
    let repository: Repository
    let archive: StreamArchive
    let console: Console
    private var heartbeat = Date().timeIntervalSince1970.rounded()
    /// When the newest gap of this database's archive was found (a lost slot); 0 when it has none.
    private var lastGap: Double = 0

    public init(options: StreamOptions, repository: Repository, console: Console = .shared) {
        self.options = options
        self.repository = repository
        self.archive = StreamArchive(repository: repository)
        self.console = console
    }

    /// Where the lineage's archive stands: what the next segment continues from.
    struct Tip {
        var number = 0
        var previousKey: String?
        var previousSHA256: String?
        var end: LSN
        var lastCommit: Int64?
        var relations: [UInt32: PgOutput.Relation] = [:]
    }

    public func run(stopRequested: @escaping @Sendable () -> Bool) throws -> StreamReport {
        let source = try StreamSource(conninfo: options.conninfo)
        try source.checkWalLevel()
        let fullIdentity = try source.ensureReplicaIdentity(fullIdentity: options.replicaIdentityFull)
        if !fullIdentity.isEmpty { console.note("stream: REPLICA IDENTITY FULL set on \(fullIdentity.joined(separator: ", "))") }
        if let warning = try source.walRetentionWarning() { console.note("warning: \(warning)") }
        for note in try source.notArchived() { console.note("warning: \(note)") }
        if try source.ensurePublication() { console.note("stream: created publication \(source.publicationName) (FOR ALL TABLES)") }
        var captureLive = false
        let fallback = "schema changes fall back to a new base backup after each change, and a restore to a time between a change and that base is refused (docs/runbooks/point-in-time-recovery.md, Migrations)"
        if options.captureSchemaChanges {
            switch try source.ensureSchemaCapture() {
            case .installed:
                console.note("stream: created event triggers \(SchemaCapture.triggers.joined(separator: ", ")) (schema \(SchemaCapture.schema)) in \(source.database): each DDL command is archived in order with the rows and replayed by restores")
                captureLive = true
            case .present:
                captureLive = true
            case .unavailable(let why):
                console.note("warning: \(why): \(fallback)")
            }
        } else {
            console.note("stream: --no-schema-capture: \(fallback)")
        }

        let replication: ReplicationConnection
        do { replication = try ReplicationConnection(conninfo: options.conninfo) } catch {
            throw DRKitError.wrap(error, "cannot open a replication connection to \(source.redacted) (the role needs the REPLICATION attribute, and pg_hba.conf must allow it)")
        }
        let (lineage, dataKey, tip) = try openLineage(source: source, replication: replication)
        lastGap = (try archive.lineages(database: source.database)).compactMap(\.gap?.detectedAt.timeIntervalSince1970).max()?.rounded() ?? 0
        var state = tip
        let start = max(state.end, lineage.startPosition)
        do {
            try replication.startLogical(slot: source.slotName, from: start, options: [
                ("proto_version", "1"), ("publication_names", Connection.quoteIdentifier(source.publicationName)),
            ] + (source.serverVersionNum >= 140000 ? [("messages", "true")] : []))
        } catch let e as PostgresError where e.sqlState == "55006" {
            throw DRKitError(.refused, "slot \(source.slotName) is in use: another `drkit stream` of \(source.database) is running", cause: e)
        } catch { throw DRKitError.wrap(error, "starting replication from slot \(source.slotName)") }
        console.note("stream \(source.database): lineage \(lineage.lineage), slot \(source.slotName) from \(start), segment \(state.number + 1) next")

        let bases = BaseBackups(runner: self, lineage: lineage)
        // The first look before the first base: DDL between them is then inside a recorded window.
        var catalog = try source.catalogDefinitions()
        bases.startIfNeeded(initial: true)
        var nextCatalogLook = Date().addingTimeInterval(options.flushInterval)
        /// DDL that writes no row is invisible to pgoutput: compare the catalog with the last look.
        func lookAtCatalog() throws {
            // A look that fails is skipped: the next one compares with the last good one (a wider window).
            let now: (serverTime: Int64, tables: [String: (name: String, signature: String)])
            do { now = try source.catalogDefinitions() } catch {
                console.note("warning: could not read the catalog to look for schema changes (\(DRKitError.wrap(error).message)); trying again at the next segment")
                return
            }
            defer { catalog = now }
            // While the capture fires, every DDL command is in the stream itself, in order: nothing to guess.
            if captureLive {
                if (try? source.schemaCaptureIsLive()) != false { return }
                captureLive = false
                console.note("warning: drkit's schema-change capture on \(source.database) was dropped or disabled (event triggers \(SchemaCapture.triggers.joined(separator: ", "))): from now on \(fallback); restart the stream to create it again")
            }
            // Recorded even when pgoutput described a table's new definition since: that comes with the first
            // row written after the DDL, which may be long after it; the window starts at the last look before.
            let created = now.tables.keys.filter { catalog.tables[$0] == nil }.compactMap { now.tables[$0]?.name }
            let dropped = catalog.tables.keys.filter { now.tables[$0] == nil }.compactMap { catalog.tables[$0]?.name }
            let altered = now.tables.compactMap { oid, table in catalog.tables[oid].flatMap { $0.signature == table.signature && $0.name == table.name ? nil : table.name } }
            guard !(created.isEmpty && dropped.isEmpty && altered.isEmpty) else { return }
            let change = CatalogChange(observedAfter: catalog.serverTime, observedBy: now.serverTime, created: created.count, dropped: dropped.count, altered: altered.count)
            try archive.record(change, lineage: lineage.lineage)
            let names = (created.sorted().map { "created \($0)" } + dropped.sorted().map { "dropped \($0)" } + altered.sorted().map { "altered \($0)" }).joined(separator: ", ")
            console.note("warning: the schema changed between \(CommitTime.iso8601(change.observedAfter)) and \(CommitTime.iso8601(change.observedBy)) (\(names)): restores to later times start from the base backup taken after it; a time in between is refused")
            bases.request("the schema changed (\(change.summary))")
        }

        var report = StreamReport(lineage: lineage.lineage, segments: 0, transactions: 0, lastCommit: state.lastCommit, basesTaken: [])
        var pending = PendingSegment(relations: state.relations)
        var transaction: [UInt8] = []
        var transactionChanges = 0
        var transactionBegin: (finalLSN: LSN, commitTime: Int64)?
        var transactionSchemaChanges: [(table: String, relation: UInt32)] = []
        /// Captured DDL commands the replay can run, so far this run, and that count when each relation
        /// was last described: a new description after one of them is the command's effect, not a guess.
        var replayableCommands = 0
        var describedAfter: [UInt32: Int] = [:]
        var transactionUnreplayable: String?
        var confirmed = start
        var serverEnd = start
        var deadline = Date().addingTimeInterval(options.flushInterval)
        var lastStatus = Date()
        var lastGauges = Date.distantPast

        func flush() throws {
            guard pending.transactions > 0 else { return }
            let sequences = (try? source.sequenceValues()) ?? []
            let written = try pending.write(lineage: lineage, tip: &state, sequences: sequences, archive: archive, dataKey: dataKey)
            report.segments += 1
            report.transactions += written.transactions
            report.lastCommit = state.lastCommit
            pending = PendingSegment(relations: state.relations)
            // The catalog as of this segment, before confirming it: once the server has the position,
            // any DDL after the stored rows is judged against this look.
            try lookAtCatalog()
            nextCatalogLook = Date().addingTimeInterval(options.flushInterval)
            // Only now is the position safe to give up on the server.
            confirmed = max(confirmed, state.end)
            try replication.sendStatus(written: confirmed, flushed: confirmed, applied: confirmed)
            lastStatus = Date()
            if options.showProgress {
                console.note("stream: segment \(state.number) stored (\(written.transactions) transactions, \(written.changes) changes, up to \(CommitTime.iso8601(state.lastCommit ?? 0)))")
            }
            publishGauges(source: source, lastCommit: state.lastCommit, caughtUp: false, force: true, last: &lastGauges)
        }

        do {
            while !stopRequested() {
                let wait = max(0.05, min(1, deadline.timeIntervalSinceNow))
                if let message = try replication.next(timeout: wait) {
                    switch message {
                    case .keepalive(let walEnd, let replyRequested):
                        serverEnd = max(serverEnd, walEnd)
                        // Nothing received is waiting to be stored: the server may drop WAL up to here.
                        var advanced = false
                        if pending.transactions == 0, transactionBegin == nil, serverEnd > confirmed {
                            confirmed = serverEnd
                            advanced = true
                        }
                        if replyRequested || advanced {
                            try replication.sendStatus(written: confirmed, flushed: confirmed, applied: confirmed)
                            lastStatus = Date()
                        }
                    case .data(_, let walEnd, let payload):
                        serverEnd = max(serverEnd, walEnd)
                        guard let kind = payload.first else { continue }
                        switch kind {
                        case UInt8(ascii: "B"):
                            guard case .begin(let final, let time, _) = try PgOutput.decode(payload) else { continue }
                            transactionBegin = (final, time)
                            transaction.removeAll(keepingCapacity: true)
                            transactionChanges = 0
                            transactionSchemaChanges = []
                            transactionUnreplayable = nil
                            ChangeSegment.appendFrame(payload, to: &transaction)
                        case UInt8(ascii: "M"):
                            guard case .message(true, SchemaCapture.messagePrefix, let content) = try PgOutput.decode(payload) else { continue }
                            let command = try SchemaCapture.Command.decode(content)
                            switch SchemaCapture.verdict(for: [command]) {
                            case .replay: replayableCommands += 1
                            case .refuse(let why):
                                transactionUnreplayable = transactionUnreplayable ?? "\(command.tag): \(why)"
                                bases.request("a schema change that cannot be replayed (\(command.tag))")
                            }
                            ChangeSegment.appendFrame(payload, to: &transaction)
                        case UInt8(ascii: "R"):
                            guard case .relation(let relation) = try PgOutput.decode(payload) else { continue }
                            let table = "\(relation.schema).\(relation.name)"
                            // Described again after a captured command: its effect, replayed at its place.
                            let explained = captureLive && replayableCommands > (describedAfter[relation.id] ?? 0)
                            describedAfter[relation.id] = replayableCommands
                            if !explained, let known = pending.relations[relation.id], !known.sameShape(as: relation) {
                                transactionSchemaChanges.append((table, relation.id))
                                bases.request("the definition of \(table) changed")
                            } else if !explained, pending.relations[relation.id] == nil, bases.baseHas(table) == false {
                                bases.request("\(table) is new (created while streaming)")
                            }
                            pending.relations[relation.id] = relation
                            ChangeSegment.appendFrame(payload, to: &transaction)
                        case UInt8(ascii: "I"), UInt8(ascii: "U"), UInt8(ascii: "D"), UInt8(ascii: "T"):
                            transactionChanges += 1
                            ChangeSegment.appendFrame(payload, to: &transaction)
                        case UInt8(ascii: "C"):
                            guard case .commit(let commitLSN, let endLSN, let time) = try PgOutput.decode(payload) else { continue }
                            ChangeSegment.appendFrame(payload, to: &transaction)
                            defer { transactionBegin = nil }
                            // Stored by an earlier run that stopped before confirming it: never twice.
                            guard endLSN > state.end, endLSN > pending.end ?? .zero else { continue }
                            if let transactionUnreplayable {
                                console.note("warning: a schema change committed at \(CommitTime.iso8601(time)) cannot be replayed (\(transactionUnreplayable)): restores to later times start from the base backup taken after it; a time in between is refused")
                            }
                            for change in transactionSchemaChanges {
                                pending.schemaChanges.append(TableDefinitionChange(table: change.table, position: commitLSN, commitTime: time))
                                console.note("warning: the definition of \(change.table) changed (commit at \(CommitTime.iso8601(time))): restores to later times start from the base backup taken after it")
                            }
                            pending.add(transaction, changes: transactionChanges, end: endLSN, commitTime: time)
                        default:
                            continue  // Origin, Type: not needed to replay rows.
                        }
                    }
                }
                if pending.transactions > 0, Date() >= deadline || pending.bytes.count >= options.maxSegmentBytes {
                    try flush()
                }
                if Date() >= deadline { deadline = Date().addingTimeInterval(options.flushInterval) }
                if Date().timeIntervalSince(lastStatus) >= 10 {
                    try replication.sendStatus(written: confirmed, flushed: confirmed, applied: confirmed)
                    lastStatus = Date()
                }
                // Caught up: nothing received waits to be stored and the server has sent nothing newer.
                let caughtUp = pending.transactions == 0 && transactionBegin == nil && confirmed >= serverEnd
                publishGauges(source: source, lastCommit: state.lastCommit, caughtUp: caughtUp, force: false, last: &lastGauges)
                if Date() >= nextCatalogLook {
                    try lookAtCatalog()
                    nextCatalogLook = Date().addingTimeInterval(options.flushInterval)
                }
                bases.startIfNeeded(initial: false)
            }
            // A clean stop: what is complete is stored and confirmed; a transaction still arriving is
            // sent again by the server next time.
            try flush()
            try replication.sendStatus(written: confirmed, flushed: confirmed, applied: confirmed)
            replication.stop()
        } catch {
            bases.wait()
            publishGauges(source: source, lastCommit: state.lastCommit, caughtUp: false, force: true, last: &lastGauges, running: false)
            throw DRKitError.wrap(error, "stream of \(source.database)")
        }
        publishGauges(source: source, lastCommit: state.lastCommit, caughtUp: false, force: true, last: &lastGauges, running: false)
        report.basesTaken = bases.wait()
        console.note("stream \(source.database): stopped; \(report.segments) segment(s), \(report.transactions) transaction(s) stored this run\(report.lastCommit.map { ", archive up to \(CommitTime.iso8601($0))" } ?? "")")
        return report
    }

    /// The lineage to continue, or a new one. A slot that exists with a lineage here resumes it; a
    /// lineage whose slot is gone cannot be continued (the changes since its last segment are lost
    /// to it), so a new slot starts a new lineage and the gap is said.
    private func openLineage(source: StreamSource, replication: ReplicationConnection) throws -> (StreamLineage, [UInt8]?, Tip) {
        var slot = try source.slot()
        // A stream that was just killed (a restart by systemd) leaves its walsender for a moment.
        let deadline = Date().addingTimeInterval(30)
        while let state = slot, state.active, Date() < deadline {
            usleep(200_000)
            slot = try source.slot()
        }
        if let slot, slot.active {
            throw DRKitError(.refused, "slot \(source.slotName) is in use: another `drkit stream` of \(source.database) is running")
        }
        let existing = try archive.lineages(database: source.database).filter {
            $0.systemIdentifier == source.systemIdentifier && $0.slot == source.slotName
        }.last
        if slot != nil, let existing {
            if existing.encrypted && options.key == nil && !options.recipients.isEmpty {
                console.note("stream: lineage \(existing.lineage) is sealed to age recipients and this host cannot reopen its key: a new lineage starts where it ends (nothing is lost; a restore to a time before the new lineage's first base uses \(existing.lineage))")
            } else {
                let dataKey = try existingDataKey(existing)
                return (existing, dataKey, try tip(of: existing, dataKey: dataKey))
            }
        }
        var gap: StreamLineage.Gap?
        if let existing, slot == nil {
            let last = try archive.segments(of: existing.lineage).last
            gap = StreamLineage.Gap(previousLineage: existing.lineage, previousLastCommit: last?.name.lastCommit,
                                    previousEndPosition: last?.name.endPosition ?? existing.startPosition, detectedAt: Date())
            console.note("warning: slot \(source.slotName) no longer exists (dropped, or lost in a failover): lineage \(existing.lineage) ends at \(last.map { CommitTime.iso8601($0.name.lastCommit) } ?? "its start"); changes after that are not archived. Starting a new lineage with a new base backup.")
        }
        let start: LSN
        if let confirmed = slot?.confirmedFlush {
            start = confirmed
        } else {
            do { start = try replication.createLogicalSlot(source.slotName, temporary: false, exportSnapshot: false, failover: true).consistentPoint } catch {
                throw DRKitError.wrap(error, "creating replication slot \(source.slotName)")
            }
            console.note("stream: created replication slot \(source.slotName) at \(start)")
        }
        let id = BackupId.make()
        let encryption: (envelope: KeyEnvelope?, dataKey: [UInt8], fingerprint: String)?
        do {
            if let key = options.key {
                let (envelope, dataKey) = try KeyEnvelope.create(backupId: StreamArchive.folder(id), source: key)
                encryption = (envelope, dataKey, envelope.kek.fingerprint)
            } else if !options.recipients.isEmpty {
                encryption = (nil, SecureRandom.bytes(32), AgeEnvelopes.fingerprint(options.recipients))
            } else {
                encryption = nil
            }
            if let encryption, !options.recipients.isEmpty {
                try AgeEnvelopes.write(dataKey: encryption.dataKey, recipients: options.recipients, backupId: StreamArchive.folder(id), in: repository)
            }
        } catch {
            throw DRKitError.wrap(error, "preparing encryption")
        }
        let lineage = StreamLineage(lineage: id, database: source.database, systemIdentifier: source.systemIdentifier,
                                    databaseOid: source.databaseOid, serverVersion: source.serverVersion, slot: source.slotName,
                                    publication: source.publicationName, startPosition: start, createdAt: Date(),
                                    compression: .init(algorithm: options.codec.algorithm.rawValue, level: options.codec.level),
                                    encrypted: encryption != nil, keyFingerprint: encryption?.fingerprint, gap: gap)
        try archive.create(lineage, envelope: encryption?.envelope)
        return (lineage, encryption?.dataKey, Tip(end: start))
    }

    private func existingDataKey(_ lineage: StreamLineage) throws -> [UInt8]? {
        guard lineage.encrypted else {
            if options.key != nil { throw DRKitError(.usage, "lineage \(lineage.lineage) of \(lineage.database) is stored unencrypted: continue it with --no-encrypt, or `drkit stream drop` and start again") }
            return nil
        }
        guard let key = options.key else { throw DRKitError(.usage, "lineage \(lineage.lineage) of \(lineage.database) is encrypted: give its key") }
        return try KeyEnvelopes.open(backupId: StreamArchive.folder(lineage.lineage), inManifest: nil, with: key, in: repository).dataKey
    }

    /// The last stored segment tells where to continue: its number, hash, end and the relations
    /// known at its end (so a changed table definition is still noticed after a restart).
    private func tip(of lineage: StreamLineage, dataKey: [UInt8]?) throws -> Tip {
        let segments = try archive.segments(of: lineage.lineage)
        guard let last = segments.last else { return Tip(end: lineage.startPosition) }
        let (decoded, sha256) = try archive.read(last, lineage: lineage, dataKey: dataKey)
        var relations = Dictionary(decoded.header.relations.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
        for message in decoded.messages where message.first == UInt8(ascii: "R") {
            if case .relation(let relation) = try PgOutput.decode(Array(message)) { relations[relation.id] = relation }
        }
        return Tip(number: last.name.number, previousKey: last.key, previousSHA256: sha256, end: decoded.header.endPosition,
                   lastCommit: decoded.header.lastCommit, relations: relations)
    }

    /// The stream's gauges, at most every 15 s (and after each segment). Lag is 0 while the stream has
    /// everything the server sent; otherwise the age of the newest archived commit: what a disaster now would lose.
    /// `running: false`: the last gauges of a stream that stops (up 0, the heartbeat left where it was).
    private func publishGauges(source: StreamSource, lastCommit: Int64?, caughtUp: Bool, force: Bool, last: inout Date, running: Bool = true) {
        guard options.metrics.isEnabled, force || Date().timeIntervalSince(last) >= 15 else { return }
        last = Date()
        if running { heartbeat = Date().timeIntervalSince1970.rounded() }
        let labels = [("database", source.database), ("repository", repository.store.location)]
        var samples = [MetricSample("drkit_stream_up", "1 while drkit stream runs, 0 once it has stopped.", labels: labels, value: running ? 1 : 0),
                       MetricSample("drkit_stream_heartbeat_timestamp_seconds", "When the running stream last wrote its gauges (a stopped, stalled or killed stream stops moving it).",
                                    labels: labels, value: heartbeat)]
        if let lastCommit {
            let commit = CommitTime.date(lastCommit).timeIntervalSince1970
            samples.append(MetricSample("drkit_stream_last_commit_timestamp_seconds", "Commit time of the newest transaction stored in the change archive.", labels: labels, value: commit))
            samples.append(MetricSample("drkit_stream_lag_seconds", "Seconds of committed changes not yet in the archive: 0 when caught up, else the age of the newest archived commit.",
                                        labels: labels, value: caughtUp ? 0 : max(0, Date().timeIntervalSince1970 - commit)))
        }
        samples.append(MetricSample("drkit_stream_last_gap_timestamp_seconds", "When the stream last found its slot lost and started a new lineage: the changes between are not archived (0: never).",
                                    labels: labels, value: lastGap))
        if let retained = try? source.retainedBytes() {
            samples.append(MetricSample("drkit_stream_slot_retained_bytes", "WAL bytes the stream's replication slot keeps on the source.", labels: labels, value: Double(retained)))
        }
        options.metrics.publish(MetricsReport(command: "stream", grouping: labels, samples: samples)).forEach { console.note("warning: \($0)") }
    }

    /// Base backups linked to the stream, taken on a thread of their own while the stream goes on.
    final class BaseBackups: @unchecked Sendable {
        private let runner: StreamRunner
        private let lineage: StreamLineage
        private let lock = NSLock()
        private var thread: Thread?
        private var done = DispatchGroup()
        private var running = false
        private var taken: [String] = []
        private var lastBase: Date?
        /// A table changed or appeared: the next base must be taken after it (one already running may not be).
        private var requested: String?
        /// The tables of the newest linked base: a table outside them is new to the archive.
        private var tables: Set<String>?

        init(runner: StreamRunner, lineage: StreamLineage) {
            self.runner = runner
            self.lineage = lineage
        }

        /// At start: a base when no backup of the database is linked at or after the lineage's start.
        /// Later: when `--base-every` has passed since the newest linked one.
        func startIfNeeded(initial: Bool) {
            lock.lock()
            defer { lock.unlock() }
            guard !running else { return }
            if initial {
                let linked = (try? runner.repository.backups())?.filter {
                    $0.summary.database == lineage.database && $0.summary.partial != true
                        && ($0.summary.streamPosition.flatMap(LSN.init).map { $0 >= lineage.startPosition } ?? false)
                } ?? []
                lastBase = linked.first?.summary.startedAt
                tables = linked.first.flatMap(tableNames)
                guard linked.isEmpty else { return }
            } else if let reason = requested {
                runner.console.note("stream: taking a base backup now: \(reason); restores to later times start from it")
            } else {
                guard let every = runner.options.baseEvery, let lastBase, Date().timeIntervalSince(lastBase) >= every else { return }
            }
            requested = nil
            running = true
            lastBase = Date()
            done.enter()
            let thread = Thread { [self] in
                defer { done.leave() }
                var backup = BackupOptions(conninfo: runner.options.conninfo, key: runner.options.key)
                backup.recipients = runner.options.recipients
                backup.signingKey = runner.options.signingKey
                backup.codec = runner.options.codec
                backup.jobs = runner.options.baseJobs
                backup.showProgress = false
                backup.linkToStream = true
                do {
                    let result = try BackupEngine(options: backup, repository: runner.repository, console: runner.console).run()
                    runner.console.note("stream: base backup \(result.summary.backupId) committed (linked at \(result.summary.streamPosition ?? "?"))")
                    let names = Set(result.manifest.tables.map { "\($0.schema).\($0.name)" })
                    lock.lock(); taken.append(result.summary.backupId); tables = names; lock.unlock()
                } catch {
                    runner.console.note("warning: base backup for the stream failed: \(DRKitError.wrap(error).message); the stream goes on, and the next attempt follows at start or after --base-every")
                }
                lock.lock(); running = false; lock.unlock()
            }
            self.thread = thread
            thread.start()
        }

        /// Fallback for schema changes (DDL is not replicated): a new base after the change, so that
        /// restores to later times start from a base that has the new definition.
        func request(_ reason: String) {
            lock.lock(); defer { lock.unlock() }
            requested = requested ?? reason
        }

        /// Whether `table` (schema.name) is in the newest linked base; nil while unknown.
        func baseHas(_ table: String) -> Bool? {
            lock.lock(); defer { lock.unlock() }
            return tables.map { $0.contains(table) }
        }

        private func tableNames(_ file: ManifestFile) -> Set<String>? {
            do {
                let dataKey = try runner.options.key.map { try KeyEnvelopes.dataKey(for: file, source: $0, in: runner.repository) }
                return Set(try file.open(dataKey: file.isEncrypted ? dataKey : nil).tables.map { "\($0.schema).\($0.name)" })
            } catch { return nil }
        }

        @discardableResult
        func wait() -> [String] {
            done.wait()
            lock.lock()
            defer { lock.unlock() }
            return taken
        }
    }
}

/// The committed transactions of the next segment, as framed pgoutput messages.
struct PendingSegment {
    var relations: [UInt32: PgOutput.Relation]
    let relationsAtStart: [PgOutput.Relation]
    var bytes: [UInt8] = []
    var transactions = 0
    var changes = 0
    var firstCommit: Int64?
    var lastCommit: Int64?
    var end: LSN?
    var schemaChanges: [TableDefinitionChange] = []

    init(relations: [UInt32: PgOutput.Relation]) {
        self.relations = relations
        relationsAtStart = relations.values.sorted { $0.id < $1.id }
    }

    mutating func add(_ transaction: [UInt8], changes: Int, end: LSN, commitTime: Int64) {
        bytes.append(contentsOf: transaction)
        transactions += 1
        self.changes += changes
        firstCommit = firstCommit ?? commitTime
        lastCommit = commitTime
        self.end = end
    }

    /// Writes the segment after `tip` and moves the tip to it.
    func write(lineage: StreamLineage, tip: inout StreamRunner.Tip, sequences: [SequenceValue], archive: StreamArchive,
               dataKey: [UInt8]?) throws -> (transactions: Int, changes: Int) {
        guard let end, let firstCommit, let lastCommit else { return (0, 0) }
        let header = SegmentHeader(lineage: lineage.lineage, database: lineage.database, number: tip.number + 1,
                                   previousObject: tip.previousKey, previousSHA256: tip.previousSHA256,
                                   startPosition: tip.end, endPosition: end, firstCommit: firstCommit, lastCommit: lastCommit,
                                   transactions: transactions, changes: changes, relations: relationsAtStart, sequences: sequences,
                                   schemaChanges: schemaChanges, writtenAt: Date())
        let name = SegmentName(number: header.number, startPosition: tip.end, endPosition: end, lastCommit: lastCommit)
        let written: (key: String, sha256: String)
        do { written = try archive.write(try ChangeSegment.encode(header: header, messages: bytes), name: name, lineage: lineage, dataKey: dataKey) } catch {
            throw DRKitError.wrap(error, "writing change segment \(header.number)")
        }
        tip = StreamRunner.Tip(number: header.number, previousKey: written.key, previousSHA256: written.sha256, end: end,
                               lastCommit: lastCommit, relations: relations)
        return (transactions, changes)
    }
}
