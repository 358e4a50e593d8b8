import Common
import Foundation

/// The full description of a backup. Encrypted inside the manifest file when encryption is on.
public struct BackupManifest: Codable, Equatable, Sendable {
    public var backupId: String
    public var toolVersion: String
    public var source: SourceRecord
    /// The snapshot's `now()`: every row, count and sequence value is as of this instant.
    public var snapshotTime: Date
    public var startedAt: Date
    public var finishedAt: Date
    public var compression: Compression
    public var preData: ObjectRecord
    public var postData: ObjectRecord
    public var tables: [TableRecord]
    public var sequences: [SequenceRecord]
    public var materializedViews: [MaterializedViewRecord]
    /// The key the backup was made with (format 2), so that the summary's fingerprint is authenticated too.
    public var keyFingerprint: String?
    /// Installed extensions (absent in backups made before they were recorded).
    public var extensions: [ExtensionRecord]?
    /// The comparison with the previous backup of the database, when there was one to compare with.
    public var shrinkage: ShrinkReport?
    /// The cluster's roles, memberships, settings, tablespaces and database properties (`--globals`):
    /// one JSON object (`globals.json...`), encrypted like the rest.
    public var globals: ObjectRecord?
    /// Large object contents, packed (see FORMAT.md); each record's `rows` counts its large objects.
    /// Their definitions (OIDs, owners, ACLs, comments) are in pre-data.
    public var largeObjects: [ObjectRecord]?
    /// The `backup --all-databases` run this backup belongs to: every database of one run shares it.
    public var run: String?
    /// A partial backup's selection (absent: the whole database).
    public var selection: SelectionRecord?
    /// pg_dump's table of contents of the DDL, with its dependencies (`schema/toc.json`): what a
    /// partial restore selects from. Absent in backups made before it was recorded.
    public var ddlIndex: ObjectRecord?
    /// The source's planner statistics as pg_dump 18+ writes them (`schema/statistics.sql`): loaded by a
    /// restore onto PostgreSQL 18+ instead of ANALYZE. Absent for sources before 18.
    public var statistics: ObjectRecord?
    /// Small tables packed together (format 4); absent when every table has objects of its own.
    public var packs: [PackRecord]?
    /// The WAL position (`pg_lsn` text) at which the snapshot is consistent with the change archive:
    /// it holds every transaction committed before it, none after. Absent for a backup not linked
    /// to a change stream (taken when the repository had no stream of the database).
    public var streamPosition: String?
    /// Taken on a hot standby (absent: on a primary).
    public var standby: StandbyRecord?

    public struct Compression: Codable, Equatable, Sendable {
        public var algorithm: String
        public var level: Int
        public init(algorithm: String, level: Int) {
            self.algorithm = algorithm
            self.level = level
        }
    }

    public init(backupId: String, toolVersion: String, source: SourceRecord, snapshotTime: Date, startedAt: Date,
                finishedAt: Date, compression: Compression, preData: ObjectRecord, postData: ObjectRecord,
                tables: [TableRecord], sequences: [SequenceRecord], materializedViews: [MaterializedViewRecord], keyFingerprint: String? = nil,
                extensions: [ExtensionRecord]? = nil) {
        self.backupId = backupId
        self.toolVersion = toolVersion
        self.source = source
        self.snapshotTime = snapshotTime
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.compression = compression
        self.preData = preData
        self.postData = postData
        self.tables = tables
        self.sequences = sequences
        self.materializedViews = materializedViews
        self.keyFingerprint = keyFingerprint
        self.extensions = extensions
    }

    public var allObjects: [ObjectRecord] {
        let schema: [ObjectRecord] = [preData, postData] + [ddlIndex, statistics].compactMap { $0 }
        let data: [ObjectRecord] = tables.flatMap(\.objects) + (packs ?? []).map(\.object)
        return schema + data + [globals].compactMap { $0 } + (largeObjects ?? [])
    }

    /// Objects holding table rows: each table's own objects, and the packs.
    public var dataObjectCount: Int { tables.reduce(0) { $0 + $1.objects.count } + (packs?.count ?? 0) }

    /// Large objects carried (0 for none).
    public var largeObjectCount: Int64 { (largeObjects ?? []).reduce(0) { $0 + $1.rows } }
}

/// What `list` shows without the key: no table names, no data.
public struct BackupSummary: Codable, Equatable, Sendable {
    public var backupId: String
    public var toolVersion: String
    public var database: String
    public var serverVersion: String
    public var snapshotTime: Date
    public var startedAt: Date
    public var finishedAt: Date
    public var tableCount: Int
    public var objectCount: Int
    public var storedBytes: Int64
    public var encrypted: Bool
    public var keyFingerprint: String?
    /// The `--all-databases` run this backup belongs to (absent for a single-database backup).
    public var run: String?
    /// Whether the backup carries the cluster's globals (roles, tablespaces): absent means no.
    public var globals: Bool?
    /// A partial backup (`--table`, `--schema`, exclusions): absent means the whole database.
    public var partial: Bool?
    /// The manifest's `streamPosition`: where a point-in-time restore from this backup starts replaying.
    public var streamPosition: String?
    /// Taken on a hot standby: the last commit it had replayed, what the data are as of (the drill's RPO
    /// counts from it). Absent for a backup of a primary, whose data are as of `snapshotTime`.
    public var effectiveTime: Date?

    public init(backupId: String, toolVersion: String, database: String, serverVersion: String, snapshotTime: Date,
                startedAt: Date, finishedAt: Date, tableCount: Int, objectCount: Int, storedBytes: Int64,
                encrypted: Bool, keyFingerprint: String?, run: String? = nil, globals: Bool? = nil, partial: Bool? = nil) {
        self.run = run
        self.globals = globals
        self.partial = partial
        self.backupId = backupId
        self.toolVersion = toolVersion
        self.database = database
        self.serverVersion = serverVersion
        self.snapshotTime = snapshotTime
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.tableCount = tableCount
        self.objectCount = objectCount
        self.storedBytes = storedBytes
        self.encrypted = encrypted
        self.keyFingerprint = keyFingerprint
    }
}

/// One entry of the plaintext object index: what a copy checks each object against without the key.
public struct StoredObject: Codable, Equatable, Sendable {
    public var name: String
    public var size: Int64
    public var sha256: String

    public init(name: String, size: Int64, sha256: String) {
        self.name = name
        self.size = size
        self.sha256 = sha256
    }

    public init(_ record: ObjectRecord) {
        self.init(name: record.name, size: record.size, sha256: record.sha256)
    }
}
