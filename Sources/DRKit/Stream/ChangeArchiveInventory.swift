import Archive
import PostgresClient
import Foundation
import Common

/// One lineage of the change archive as `list` shows it (from object names: no key needed) and as
/// `verify --changes` checks it (every segment read, authenticated and chained).
public struct ChangeArchiveLineage: Codable, Sendable {
    public var lineage: String
    public var database: String
    public var slot: String
    public var startPosition: String
    public var endPosition: String
    public var segments: Int
    public var storedBytes: Int64
    public var firstCommit: String?
    public var lastCommit: String?
    /// Seconds between now and the newest archived commit.
    public var lagSeconds: Double?
    public var lastSegment: String?
    public var encrypted: Bool
    /// This lineage began after a lost slot: the previous lineage and its last archived commit.
    public var gapAfter: String?
    /// Set by `verify --changes`: transactions and row changes read back.
    public var transactionsChecked: Int?
    public var changesChecked: Int?
}

public enum ChangeArchiveInventory {
    /// Every lineage (of `database`, when given), from the listing alone.
    public static func list(_ repository: Repository, database: String? = nil, now: Date = Date()) throws -> [ChangeArchiveLineage] {
        let archive = StreamArchive(repository: repository)
        return try archive.lineages().filter { database == nil || $0.database == database }.map { lineage in
            let segments = try archive.segments(of: lineage.lineage)
            return entry(lineage, segments: segments, firstCommit: nil, now: now)
        }
    }

    static func entry(_ lineage: StreamLineage, segments: [StoredSegment], firstCommit: Int64?, now: Date) -> ChangeArchiveLineage {
        let last = segments.last
        return ChangeArchiveLineage(
            lineage: lineage.lineage, database: lineage.database, slot: lineage.slot, startPosition: lineage.startPosition.description,
            endPosition: (last?.name.endPosition ?? lineage.startPosition).description, segments: segments.count,
            storedBytes: segments.reduce(0) { $0 + $1.size }, firstCommit: firstCommit.map(CommitTime.iso8601),
            lastCommit: last.map { CommitTime.iso8601($0.name.lastCommit) },
            lagSeconds: last.map { max(0, now.timeIntervalSince(CommitTime.date($0.name.lastCommit))) },
            lastSegment: last?.key, encrypted: lineage.encrypted,
            gapAfter: lineage.gap.map { "lineage \($0.previousLineage) (last archived commit \($0.previousLastCommit.map(CommitTime.iso8601) ?? "none"))" })
    }

    /// Reads back every segment: authenticated, decompressed, chained to the one before, every message
    /// decodable and counted as the header says. The first broken segment is exit 5, named.
    public static func verify(_ repository: Repository, keys: KeyOptions, database: String? = nil,
                              progress: ((String) -> Void)? = nil) throws -> [ChangeArchiveLineage] {
        let archive = StreamArchive(repository: repository)
        let lineages = try archive.lineages().filter { database == nil || $0.database == database }
        guard !lineages.isEmpty else {
            throw DRKitError(.repository, "no change archive\(database.map { " of \($0)" } ?? "") in \(repository.store.location)")
        }
        return try lineages.map { lineage in
            let dataKey = try archive.dataKey(of: lineage, keys: keys)
            let segments = try archive.segments(of: lineage.lineage)
            try StreamArchive.checkNumbering(segments, lineage: lineage.lineage)
            if let first = segments.first, first.name.number != 1 {
                progress?("note: lineage \(lineage.lineage) starts at segment \(first.name.number) (the earlier ones were removed by forget)")
            }
            var chain = StreamArchive.ChainCheck(lineage: lineage)
            var transactions = 0
            var changes = 0
            var firstCommit: Int64?
            for segment in segments {
                let (decoded, sha256) = try archive.read(segment, lineage: lineage, dataKey: dataKey)
                try chain.accept(segment, header: decoded.header, sha256: sha256)
                var commits = 0
                var rows = 0
                for message in decoded.messages {
                    let name = segment.key.split(separator: "/").last.map(String.init) ?? segment.key
                    let kind: PgOutput.Message
                    do { kind = try PgOutput.decode(Array(message)) } catch {
                        throw DRKitError(.integrity, "change segment \(name) holds an undecodable message: \(DRKitError.wrap(error).message)")
                    }
                    switch kind {
                    case .commit: commits += 1
                    case .insert, .update, .delete, .truncate: rows += 1
                    default: break
                    }
                }
                guard commits == decoded.header.transactions, rows == decoded.header.changes else {
                    throw DRKitError(.integrity, "change segment \(segment.key) holds \(commits) transactions and \(rows) changes, its header says \(decoded.header.transactions) and \(decoded.header.changes)")
                }
                firstCommit = firstCommit ?? decoded.header.firstCommit
                transactions += commits
                changes += rows
                progress?("verify: segment \(segment.name.number) of lineage \(lineage.lineage) OK")
            }
            var checked = entry(lineage, segments: segments, firstCommit: firstCommit, now: Date())
            checked.transactionsChecked = transactions
            checked.changesChecked = changes
            return checked
        }
    }
}
