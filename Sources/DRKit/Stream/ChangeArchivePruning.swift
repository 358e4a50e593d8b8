import Archive
import ObjectStorage
import PostgresClient
import Foundation
import Common

/// What `forget` removes from the change archive: segments no kept base backup needs. A point-in-time
/// restore replays from a base's position on, so a lineage keeps its segments from the oldest kept base
/// linked to it; a lineage that no kept base is linked to goes whole, unless it is its database's
/// newest (a running stream, whose base may still be coming).
public struct ChangeArchivePruning: Codable, Sendable {
    public var lineage: String
    public var database: String
    public var segments: Int
    public var storedBytes: Int64
    /// The whole lineage goes (lineage.json and key envelopes too).
    public var wholeLineage: Bool
    /// Segments still under Object Lock retention, left for a later run.
    public var locked: Int

    /// `kept`: the kept backups' database and authenticated stream position.
    static func plan(kept: [(database: String, position: LSN)], in repository: Repository) throws -> [(ChangeArchivePruning, [StoredSegment], StreamLineage)] {
        let archive = StreamArchive(repository: repository)
        let lineages = try archive.lineages()
        var plans: [(ChangeArchivePruning, [StoredSegment], StreamLineage)] = []
        for (database, group) in Dictionary(grouping: lineages, by: \.database) {
            let ordered = group.sorted { $0.startPosition < $1.startPosition }
            for (index, lineage) in ordered.enumerated() {
                let next = index + 1 < ordered.count ? ordered[index + 1].startPosition : nil
                let linked = kept.filter { base in base.database == database && base.position >= lineage.startPosition && (next.map { base.position < $0 } ?? true) }
                let segments = try archive.segments(of: lineage.lineage)
                let removable: [StoredSegment]
                let whole: Bool
                if let oldest = linked.map(\.position).min() {
                    removable = segments.filter { $0.name.endPosition <= oldest }
                    whole = false
                } else if next != nil {
                    removable = segments
                    whole = true
                } else {
                    continue
                }
                guard !removable.isEmpty || whole else { continue }
                plans.append((ChangeArchivePruning(lineage: lineage.lineage, database: database, segments: removable.count,
                                                   storedBytes: removable.reduce(0) { $0 + $1.size }, wholeLineage: whole, locked: 0),
                              removable, lineage))
            }
        }
        return plans.sorted { ($0.0.database, $0.0.lineage) < ($1.0.database, $1.0.lineage) }
    }

    /// Removes oldest first, so that what remains is always a lineage's unbroken tail. A segment under
    /// Object Lock stops its lineage's pruning there.
    static func execute(_ plans: [(ChangeArchivePruning, [StoredSegment], StreamLineage)], in repository: Repository, now: Date = Date()) throws -> [ChangeArchivePruning] {
        let reader = try repository.objectLockEnabled() ? repository.store as? ObjectLockReading : nil
        return try plans.map { plan, segments, lineage in
            var done = plan
            var removed: [StoredSegment] = []
            for segment in segments {
                if let reader, let lock = try reader.lock(of: segment.key), lock.retainUntil > now { break }
                removed.append(segment)
            }
            done.locked = segments.count - removed.count
            do {
                for batch in removed.chunked(by: 500) { try repository.store.delete(keys: batch.map(\.key)) }
                if plan.wholeLineage && done.locked == 0 {
                    let folder = StreamArchive.folder(lineage.lineage)
                    try repository.store.delete(keys: ["\(folder)/\(StreamArchive.lineageObject)"])
                    try repository.store.delete(keys: try repository.store.list(prefix: folder + "/").map(\.key))
                }
            } catch { throw DRKitError.wrap(error, "removing change segments of lineage \(lineage.lineage)") }
            done.segments = removed.count
            done.storedBytes = removed.reduce(0) { $0 + $1.size }
            done.wholeLineage = plan.wholeLineage && done.locked == 0
            return done
        }
    }
}
