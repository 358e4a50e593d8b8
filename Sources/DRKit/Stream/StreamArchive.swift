import Archive
import ObjectStorage
import PostgresClient
import Foundation
import Common

/// One unbroken run of a database's change stream: one replication slot, from the position the slot
/// started at. Stored at `stream/<lineage>/lineage.json` (plaintext, like a backup's summary).
public struct StreamLineage: Codable, Equatable, Sendable {
    public static let formatName = "drkit-stream"
    public var format = formatName
    public var formatVersion = 1
    public var lineage: String
    public var database: String
    public var systemIdentifier: String
    public var databaseOid: String?
    public var serverVersion: String
    public var slot: String
    public var publication: String
    /// The slot's consistent point: the archive holds every transaction committed after it.
    public var startPosition: LSN
    public var createdAt: Date
    public var compression: BackupManifest.Compression
    public var encrypted: Bool
    public var keyFingerprint: String?
    /// Set when this lineage began because the previous one's slot was lost: what was not archived.
    public var gap: Gap?

    /// Changes committed after `previousLastCommit` (the last one the previous lineage stored) and
    /// before this lineage's first base are not in the archive; restores to a time in between are refused.
    public struct Gap: Codable, Equatable, Sendable {
        public var previousLineage: String
        /// µs since 2000-01-01 (CommitTime); nil when the previous lineage stored no transaction.
        public var previousLastCommit: Int64?
        public var previousEndPosition: LSN
        public var detectedAt: Date
    }
}

/// A stored segment as listed: its object key, size and what its name says.
/// DDL the stream saw by comparing the catalog between two looks (no row of it was written, so pgoutput
/// said nothing): restores that would replay from a base before it to a time after it are refused.
/// Plaintext, so it names no table: only when, and how many of each kind (the log names them).
public struct CatalogChange: Codable, Equatable, Sendable {
    /// The server's clock at the look that still had the old definitions (µs since 2000, CommitTime)...
    public var observedAfter: Int64
    /// ...and at the one that saw the change.
    public var observedBy: Int64
    public var created: Int
    public var dropped: Int
    public var altered: Int

    var summary: String {
        [(created, "created"), (dropped, "dropped"), (altered, "altered or renamed")].filter { $0.0 > 0 }
            .map { "\($0.0) object(s) \($0.1)" }.joined(separator: ", ")
    }
}

public struct StoredSegment: Sendable, Equatable {
    public var key: String
    public var size: Int64
    public var name: SegmentName
}

/// The change archive of a repository: `stream/<lineage>/{lineage.json, keys/, segments/}`.
/// Segments are written once and never edited; each names its predecessor's hash.
public struct StreamArchive: Sendable {
    public static let root = "stream"
    static let lineageObject = "lineage.json"
    public let repository: Repository

    public init(repository: Repository) { self.repository = repository }

    static func folder(_ lineage: String) -> String { "\(root)/\(lineage)" }

    /// Every lineage, oldest first.
    public func lineages() throws -> [StreamLineage] {
        let folders: [String]
        do { folders = try repository.store.listFolders(prefix: StreamArchive.root + "/") } catch {
            throw DRKitError.wrap(error, "listing the change archive of \(repository.store.location)")
        }
        return try folders.compactMap { id -> StreamLineage? in
            let bytes: [UInt8]
            do { bytes = try repository.store.get(key: "\(StreamArchive.folder(id))/\(StreamArchive.lineageObject)") } catch let e as StorageError where e.kind == .notFound {
                return nil  // a lineage whose first object is still being written
            } catch { throw DRKitError.wrap(error, "reading lineage \(id)") }
            guard let lineage = try? JSONCoding.decoder.decode(StreamLineage.self, from: Data(bytes)), lineage.lineage == id else {
                throw DRKitError(.integrity, "\(StreamArchive.folder(id))/\(StreamArchive.lineageObject) is unreadable or belongs to another lineage")
            }
            return lineage
        }.sorted { ($0.createdAt, $0.lineage) < ($1.createdAt, $1.lineage) }
    }

    public func lineages(database: String) throws -> [StreamLineage] {
        try lineages().filter { $0.database == database }
    }

    /// A new lineage: its key envelope first, then lineage.json (which makes it listed).
    func create(_ lineage: StreamLineage, envelope: KeyEnvelope?) throws {
        let folder = StreamArchive.folder(lineage.lineage)
        if let envelope { try KeyEnvelopes.write(envelope, backupId: folder, in: repository) }
        do { try repository.putBackupObject(key: "\(folder)/\(StreamArchive.lineageObject)", bytes: [UInt8](try JSONCoding.encoder.encode(lineage))) } catch {
            throw DRKitError.wrap(error, "writing lineage \(lineage.lineage)")
        }
    }

    /// The lineage's data key; nil when it is not encrypted.
    public func dataKey(of lineage: StreamLineage, keys: KeyOptions) throws -> [UInt8]? {
        guard lineage.encrypted else { return nil }
        let identities = try keys.identities()
        if !identities.isEmpty, let dataKey = try AgeEnvelopes.open(backupId: StreamArchive.folder(lineage.lineage), identities: identities, in: repository) {
            return dataKey
        }
        guard let source = try keys.resolve() else {
            throw DRKitError(.usage, "the change archive of \(lineage.database) is encrypted (key fingerprint \(lineage.keyFingerprint ?? "?")): give --key-file, DRKIT_KEY or --passphrase-env")
        }
        return try KeyEnvelopes.open(backupId: StreamArchive.folder(lineage.lineage), inManifest: nil, with: source, in: repository).dataKey
    }

    /// The lineage's segments in order. Objects that are not segments (a temporary file) are left out.
    static let catalogFolder = "catalog"

    /// Write-once, one object per change seen.
    func record(_ change: CatalogChange, lineage: String) throws {
        let key = "\(StreamArchive.folder(lineage))/\(StreamArchive.catalogFolder)/\(String(format: "%020lld", change.observedBy)).json"
        do { try repository.putBackupObject(key: key, bytes: [UInt8](try JSONCoding.encoder.encode(change))) } catch {
            throw DRKitError.wrap(error, "recording a schema change of lineage \(lineage)")
        }
    }

    public func catalogChanges(of lineage: String) throws -> [CatalogChange] {
        do {
            return try repository.store.list(prefix: "\(StreamArchive.folder(lineage))/\(StreamArchive.catalogFolder)/").filter { $0.key.hasSuffix(".json") }
                .map { try JSONCoding.decoder.decode(CatalogChange.self, from: Data(try repository.store.get(key: $0.key))) }
                .sorted { $0.observedBy < $1.observedBy }
        } catch { throw DRKitError.wrap(error, "reading the schema changes of lineage \(lineage)") }
    }

    public func segments(of lineage: String) throws -> [StoredSegment] {
        let prefix = "\(StreamArchive.folder(lineage))/\(SegmentName.folder)/"
        do {
            return try repository.store.list(prefix: prefix).compactMap { info in
                SegmentName(objectName: info.key).map { StoredSegment(key: info.key, size: info.size, name: $0) }
            }.sorted { $0.name < $1.name }
        } catch { throw DRKitError.wrap(error, "listing the segments of lineage \(lineage)") }
    }

    /// Writes one segment (compressed, then sealed with the lineage's data key) and returns its key
    /// and the SHA-256 of the stored bytes. The segment is durable when this returns.
    func write(_ plain: [UInt8], name: SegmentName, lineage: StreamLineage, dataKey: [UInt8]?) throws -> (key: String, sha256: String) {
        let codec = try Codec.recorded(algorithm: lineage.compression.algorithm, level: lineage.compression.level)
        let objectName = name.objectName(codec: codec, encrypted: dataKey != nil)
        let pipeline = try ObjectWriterPipeline(repository: repository, backupId: StreamArchive.folder(lineage.lineage),
                                                name: objectName, codec: codec, dataKey: dataKey)
        let record = try pipeline.writeAll { pipeline in try plain.withUnsafeBytes { try pipeline.write($0) } }
        return ("\(StreamArchive.folder(lineage.lineage))/\(objectName)", record.sha256)
    }

    /// Reads, opens and decodes a segment; its header must say what its name says.
    public func read(_ segment: StoredSegment, lineage: StreamLineage, dataKey: [UInt8]?) throws -> (ChangeSegment.Decoded, sha256: String) {
        let codec = try Codec.recorded(algorithm: lineage.compression.algorithm, level: lineage.compression.level)
        let plain = BufferSink()
        let decompressor = try codec.decompressor(next: plain)
        let objectName = String(segment.key.dropFirst(StreamArchive.folder(lineage.lineage).count + 1))
        let opened: ByteSink = dataKey.map { StreamOpener(dataKey: $0, objectName: segment.key, next: decompressor) } ?? decompressor
        let hasher = HashingSink(next: opened)
        do {
            try repository.store.read(key: segment.key, into: hasher)
            try hasher.finish()
        } catch let e as StorageError where e.kind == .notFound {
            throw DRKitError(.integrity, "change segment \(objectName) of lineage \(lineage.lineage) is missing from the repository")
        } catch {
            throw DRKitError(.integrity, "change segment \(objectName) of lineage \(lineage.lineage) cannot be read (truncated, altered or swapped): \(DRKitError.wrap(error).message)", cause: error)
        }
        let decoded = try ChangeSegment.decode(plain.bytes, name: objectName)
        let header = decoded.header
        guard header.lineage == lineage.lineage, header.number == segment.name.number,
              header.startPosition == segment.name.startPosition, header.endPosition == segment.name.endPosition,
              header.lastCommit == segment.name.lastCommit else {
            throw DRKitError(.integrity, "change segment \(objectName) holds segment \(header.number) of lineage \(header.lineage) (\(header.startPosition)-\(header.endPosition)): renamed or swapped in the repository")
        }
        return (decoded, hasher.hexDigest)
    }
}

extension StreamArchive {
    /// Checks that `segments` (in order, from the lineage's first or from any one) form an unbroken
    /// chain: consecutive numbers, each starting where the one before ended and naming its hash.
    struct ChainCheck {
        private var previous: (segment: StoredSegment, sha256: String, end: LSN)?
        let lineage: StreamLineage

        init(lineage: StreamLineage, previous: (segment: StoredSegment, sha256: String, end: LSN)? = nil) {
            self.lineage = lineage
            self.previous = previous
        }

        mutating func accept(_ segment: StoredSegment, header: SegmentHeader, sha256: String) throws {
            let name = segment.key.split(separator: "/").last.map(String.init) ?? segment.key
            if let previous {
                let previousName = previous.segment.key.split(separator: "/").last.map(String.init) ?? previous.segment.key
                guard header.number == previous.segment.name.number + 1 else {
                    throw DRKitError(.integrity, "change segment \(name) follows segment \(previous.segment.name.number): segment \(previous.segment.name.number + 1) is missing from lineage \(lineage.lineage)")
                }
                guard header.previousSHA256 == previous.sha256, header.startPosition == previous.end else {
                    throw DRKitError(.integrity, "change segment \(name) does not follow \(previousName) (its recorded predecessor differs): a segment was replaced or edited in lineage \(lineage.lineage)")
                }
            } else if header.number == 1 {
                guard header.previousSHA256 == nil, header.startPosition == lineage.startPosition else {
                    throw DRKitError(.integrity, "change segment \(name) is not the first of lineage \(lineage.lineage)")
                }
            }
            previous = (segment, sha256, header.endPosition)
        }
    }

    /// The name listing must be gapless too (a removed segment is found without reading any).
    static func checkNumbering(_ segments: [StoredSegment], lineage: String) throws {
        for (a, b) in zip(segments, segments.dropFirst()) where b.name.number != a.name.number + 1 || b.name.startPosition != a.name.endPosition {
            let name = b.key.split(separator: "/").last.map(String.init) ?? b.key
            throw DRKitError(.integrity, "change segment \(name) of lineage \(lineage) does not follow segment \(a.name.number) (segments \(a.name.number + 1)...\(b.name.number - 1) missing, or one renamed)")
        }
    }
}
