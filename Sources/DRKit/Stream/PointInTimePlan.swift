import Archive
import PostgresClient
import Foundation
import Common

/// What a point-in-time restore needs: the newest base backup at or before the target that is linked
/// to the change stream, the lineage that continues from it, and the segments to replay.
public struct PointInTimePlan: Sendable {
    public var base: ManifestFile
    public var basePosition: LSN
    public var lineage: StreamLineage
    /// From the first segment holding a transaction after the base to the one holding the target.
    public var segments: [StoredSegment]
    /// The segment before `segments[0]`, whose stored hash the first one must name (nil: it is the lineage's first).
    public var predecessor: StoredSegment?
    public var target: RecoveryTarget
    /// Linked bases of the database taken after the chosen one, oldest first: where a restore past a
    /// schema change can start instead (named when one is refused).
    public var laterBases: [(backupId: String, snapshotTime: Date)] = []

    /// DDL seen only in the catalog (no row carried it) between the base and the target cannot be
    /// replayed: refused, naming when it happened and the base to restore from instead. A base taken in
    /// the window between two looks counts as before the change (the order is unknown).
    static func refuseUnreplayedSchemaChanges(_ changes: [CatalogChange], base: ManifestFile, target: RecoveryTarget,
                                              laterBases: [ManifestFile], database: String) throws {
        let baseMicros = CommitTime.micros(base.summary.snapshotTime)
        let targetMicros: Int64?
        if case .time(let micros) = target { targetMicros = micros } else { targetMicros = nil }
        for change in changes where change.observedBy > baseMicros && targetMicros.map({ change.observedAfter < $0 }) ?? true {
            let after = laterBases.filter { CommitTime.micros($0.summary.snapshotTime) > change.observedBy }
                .min { $0.summary.snapshotTime < $1.summary.snapshotTime }
            throw DRKitError(.usage, """
                the schema of \(database) changed between \(CommitTime.iso8601(change.observedAfter)) and \(CommitTime.iso8601(change.observedBy)) \
                (\(change.summary); seen in the catalog, not replayable), after base backup \(base.summary.backupId): restore to a time before \
                \(CommitTime.iso8601(change.observedAfter)), or \(after.map { "from \($0.summary.backupId) (\(Timestamps.iso8601($0.summary.snapshotTime))) on" } ?? "after the next base backup (none yet: run `drkit backup`)")
                """)
        }
    }

    /// A time inside a gap (a lost slot: between the last commit the old lineage stored and the first
    /// base of the new one) cannot be reached from either side: refused, naming both ends.
    static func refuseGap(at micros: Int64, lineages: [StreamLineage], repository: Repository, database: String) throws {
        for lineage in lineages {
            guard let gap = lineage.gap else { continue }
            let from = gap.previousLastCommit ?? Int64.min
            let firstBase = try repository.backups().filter {
                $0.summary.database == database && $0.summary.partial != true
                    && ($0.summary.streamPosition.flatMap(LSN.init).map { $0 >= lineage.startPosition } ?? false)
            }.map(\.summary.snapshotTime).min()
            let until = firstBase.map(CommitTime.micros) ?? Int64.max
            guard micros > from, micros < until else { continue }
            throw DRKitError(.usage, """
                \(CommitTime.iso8601(micros)) falls in a gap of the change archive of \(database): the replication slot was lost \
                (found \(Timestamps.iso8601(gap.detectedAt))), so changes after \(gap.previousLastCommit.map(CommitTime.iso8601) ?? "the start of lineage \(gap.previousLineage)") \
                (the end of lineage \(gap.previousLineage)) and before \(firstBase.map(Timestamps.iso8601) ?? "a first base of lineage \(lineage.lineage) (none yet)") are not archived; \
                give a time outside it
                """)
        }
    }

    /// `reference`: a backup id, or `latest` (the newest linked base of the database of the newest backup).
    public static func make(reference: String, target: RecoveryTarget, repository: Repository, keys: KeyOptions) throws -> PointInTimePlan {
        let archive = StreamArchive(repository: repository)
        let named = try repository.resolve(reference, keys: keys)
        let database = named.summary.database
        let lineages = try archive.lineages(database: database)
        guard !lineages.isEmpty else {
            throw DRKitError(.usage, "no change archive of \(database) in \(repository.store.location): point-in-time restore needs `drkit stream` to have run for it (docs/runbooks/point-in-time-recovery.md)")
        }
        if case .time(let micros) = target { try refuseGap(at: micros, lineages: lineages, repository: repository, database: database) }
        let candidates: [ManifestFile]
        if reference == "latest" {
            candidates = try repository.backups().filter { $0.summary.database == database && $0.summary.partial != true && $0.summary.streamPosition != nil }
        } else {
            guard named.summary.streamPosition != nil else {
                throw DRKitError(.usage, "backup \(named.summary.backupId) is not linked to a change stream (taken while no stream of \(database) was archived here): name a backup that `list` shows with a stream position, or `latest`")
            }
            candidates = [named]
        }
        let eligible = candidates.filter { file in
            guard let position = file.summary.streamPosition.flatMap(LSN.init) else { return false }
            switch target {
            case .time(let micros): return CommitTime.micros(file.summary.snapshotTime) <= micros
            case .lsn(let lsn): return position <= lsn
            case .latest: return true
            }
        }
        guard let base = eligible.first, let position = base.summary.streamPosition.flatMap(LSN.init) else {
            let earliest = candidates.last.map { " (the earliest linked one, \($0.summary.backupId), was taken at \(Timestamps.iso8601($0.summary.snapshotTime)))" } ?? " (there is none: take one with `drkit backup` while the stream runs)"
            throw DRKitError(.usage, "no base backup of \(database) linked to the change stream at or before \(target)\(earliest)")
        }
        guard let lineage = lineages.last(where: { $0.startPosition <= position }) else {
            throw DRKitError(.usage, "backup \(base.summary.backupId) (at \(position)) was taken before the change archive of \(database) starts (\(lineages[0].startPosition))")
        }
        try refuseUnreplayedSchemaChanges(archive.catalogChanges(of: lineage.lineage), base: base, target: target,
                                          laterBases: try repository.backups().filter { $0.summary.database == database && $0.summary.partial != true && $0.summary.streamPosition != nil },
                                          database: database)
        let all = try archive.segments(of: lineage.lineage)
        try StreamArchive.checkNumbering(all, lineage: lineage.lineage)
        let covered = describeCoverage(all, lineage: lineage)
        switch target {
        case .time(let micros):
            guard let last = all.last, last.name.lastCommit >= micros else {
                throw DRKitError(.usage, "\(target) is past the end of the change archive of \(database) (\(covered)): give an earlier time, or --to-latest")
            }
        case .lsn(let lsn):
            guard let last = all.last, last.name.endPosition >= lsn else {
                throw DRKitError(.usage, "\(target) is past the end of the change archive of \(database) (\(covered)): give an earlier position, or --to-latest")
            }
        case .latest:
            break
        }
        var segments: [StoredSegment] = []
        for segment in all where segment.name.endPosition > position {
            segments.append(segment)
            let reached: Bool
            switch target {
            case .time(let micros): reached = segment.name.lastCommit > micros
            case .lsn(let lsn): reached = segment.name.endPosition >= lsn
            case .latest: reached = false
            }
            if reached { break }
        }
        let predecessor = segments.first.flatMap { first in all.last { $0.name.number == first.name.number - 1 } }
        var plan = PointInTimePlan(base: base, basePosition: position, lineage: lineage, segments: segments, predecessor: predecessor, target: target)
        plan.laterBases = try repository.backups().filter {
            $0.summary.database == database && $0.summary.partial != true && ($0.summary.streamPosition.flatMap(LSN.init).map { $0 > position } ?? false)
        }.map { ($0.summary.backupId, $0.summary.snapshotTime) }.sorted { $0.1 < $1.1 }
        return plan
    }

    static func describeCoverage(_ segments: [StoredSegment], lineage: StreamLineage) -> String {
        guard let last = segments.last else { return "lineage \(lineage.lineage) has no segment yet, from \(lineage.startPosition)" }
        return "lineage \(lineage.lineage) covers \(lineage.startPosition) to \(last.name.endPosition), last commit \(CommitTime.iso8601(last.name.lastCommit))"
    }
}
