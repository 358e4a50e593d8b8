import Common
import Foundation

/// One stored object of a backup, as the manifest records it.
public struct ObjectRecord: Codable, Equatable, Sendable {
    /// Name relative to the backup's folder, e.g. `data/00003.0001.gz.enc`.
    public var name: String
    /// Stored bytes (after compression and encryption) and their SHA-256.
    public var size: Int64
    public var sha256: String
    /// Bytes of the plain content (SQL or COPY text) before compression.
    public var plainBytes: Int64
    /// COPY rows in the object (0 for DDL).
    public var rows: Int64

    public init(name: String, size: Int64, sha256: String, plainBytes: Int64, rows: Int64) {
        self.name = name
        self.size = size
        self.sha256 = sha256
        self.plainBytes = plainBytes
        self.rows = rows
    }
}

public struct TableRecord: Codable, Equatable, Sendable {
    public var schema: String
    public var name: String
    /// "table", "partition" or "unlogged table"
    public var kind: String
    /// Columns carried, in order (generated columns are recomputed on restore and so left out).
    public var columns: [String]
    public var rows: Int64
    public var plainBytes: Int64
    public var objects: [ObjectRecord]

    public init(schema: String, name: String, kind: String, columns: [String], rows: Int64, plainBytes: Int64, objects: [ObjectRecord]) {
        self.schema = schema
        self.name = name
        self.kind = kind
        self.columns = columns
        self.rows = rows
        self.plainBytes = plainBytes
        self.objects = objects
    }
}

/// Tables and pack slices are matched by "schema.name", unquoted (a manifest names each table once).
public protocol SchemaQualified {
    var schema: String { get }
    var name: String { get }
}

extension SchemaQualified {
    public var qualifiedKey: String { "\(schema).\(name)" }
}

extension TableRecord: SchemaQualified {}

/// Small tables' COPY data in one shared object (format 4): each slice is one table's COPY text, and
/// the slices follow each other in the object's plain stream in this order. A backup of thousands of
/// small tables writes a few packs instead of thousands of objects; a packed table has no objects of its own.
public struct PackRecord: Codable, Equatable, Sendable {
    /// `rows` and `plainBytes` are the slices' totals.
    public var object: ObjectRecord
    public var slices: [PackSlice]

    public init(object: ObjectRecord, slices: [PackSlice]) {
        self.object = object
        self.slices = slices
    }
}

public struct PackSlice: Codable, Equatable, Sendable, SchemaQualified {
    public var schema: String
    public var name: String
    /// The slice's length in the plain stream, and the COPY rows in it.
    public var plainBytes: Int64
    public var rows: Int64

    public init(schema: String, name: String, plainBytes: Int64, rows: Int64) {
        self.schema = schema
        self.name = name
        self.plainBytes = plainBytes
        self.rows = rows
    }
}

public struct SequenceRecord: Codable, Equatable, Sendable {
    public var schema: String
    public var name: String
    /// Kept as text: sequences may be bigint at their limits.
    public var lastValue: String
    public var isCalled: Bool

    public init(schema: String, name: String, lastValue: String, isCalled: Bool) {
        self.schema = schema
        self.name = name
        self.lastValue = lastValue
        self.isCalled = isCalled
    }
}

public struct MaterializedViewRecord: Codable, Equatable, Sendable {
    public var schema: String
    public var name: String
    public var populated: Bool

    public init(schema: String, name: String, populated: Bool) {
        self.schema = schema
        self.name = name
        self.populated = populated
    }
}

public struct SourceRecord: Codable, Equatable, Sendable {
    public var database: String
    public var serverVersion: String
    public var serverVersionNum: Int
    public var systemIdentifier: String?
    public var encoding: String
    /// The source database's OID: with `systemIdentifier`, names the source whatever it is renamed to.
    /// Absent in backups made before it was recorded.
    public var databaseOid: String?

    public init(database: String, serverVersion: String, serverVersionNum: Int, systemIdentifier: String?, encoding: String,
                databaseOid: String? = nil) {
        self.database = database
        self.serverVersion = serverVersion
        self.serverVersionNum = serverVersionNum
        self.systemIdentifier = systemIdentifier
        self.encoding = encoding
        self.databaseOid = databaseOid
    }
}

/// An extension the source database had installed (`plpgsql` aside), so that a restore can check the
/// target server offers it before creating anything.
public struct ExtensionRecord: Codable, Equatable, Sendable {
    public var name: String
    public var version: String

    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }
}

/// How this backup compares with the previous backup of the same database (the anomaly check).
public struct ShrinkReport: Codable, Equatable, Sendable {
    public struct Table: Codable, Equatable, Sendable {
        public var schema: String
        public var name: String
        public var previousRows: Int64
        public var rows: Int64
        public var previousPlainBytes: Int64
        public var plainBytes: Int64

        public init(schema: String, name: String, previousRows: Int64, rows: Int64, previousPlainBytes: Int64, plainBytes: Int64) {
            self.schema = schema
            self.name = name
            self.previousRows = previousRows
            self.rows = rows
            self.previousPlainBytes = previousPlainBytes
            self.plainBytes = plainBytes
        }

        /// The fraction lost (0.6 = 60% fewer rows), by rows, or by bytes when the rows held steady.
        public var drop: Double {
            let byRows = previousRows > 0 ? 1 - Double(rows) / Double(previousRows) : 0
            let byBytes = previousPlainBytes > 0 ? 1 - Double(plainBytes) / Double(previousPlainBytes) : 0
            return max(byRows, byBytes)
        }
    }

    public var previousBackupId: String
    /// All rows / the previous backup's rows; stored bytes likewise.
    public var rowsRatio: Double
    public var sizeRatio: Double
    /// Tables that lost more than the warning threshold (rows or bytes), or vanished.
    public var tables: [Table]
    public var threshold: Double

    public init(previousBackupId: String, rowsRatio: Double, sizeRatio: Double, tables: [Table], threshold: Double) {
        self.previousBackupId = previousBackupId
        self.rowsRatio = rowsRatio
        self.sizeRatio = sizeRatio
        self.tables = tables
        self.threshold = threshold
    }
}

/// A partial backup's selection, with pg_dump's pattern rules (`--table`, `--schema`, and their
/// exclusions). Absent for a whole-database backup.
public struct SelectionRecord: Codable, Equatable, Sendable {
    public var tables: [String] = []
    public var schemas: [String] = []
    public var excludeTables: [String] = []
    public var excludeSchemas: [String] = []
    public var excludeTableData: [String] = []

    public init(tables: [String] = [], schemas: [String] = [], excludeTables: [String] = [], excludeSchemas: [String] = [],
                excludeTableData: [String] = []) {
        self.tables = tables
        self.schemas = schemas
        self.excludeTables = excludeTables
        self.excludeSchemas = excludeSchemas
        self.excludeTableData = excludeTableData
    }

    public var isEmpty: Bool { self == SelectionRecord() }

    /// `--table`/`--schema` name what is carried (pg_dump then leaves out large objects and extensions).
    public var includesOnly: Bool { !tables.isEmpty || !schemas.isEmpty }

    /// The same selection as pg_dump options.
    public var pgDumpArguments: [String] {
        tables.map { "--table=\($0)" } + schemas.map { "--schema=\($0)" } + excludeTables.map { "--exclude-table=\($0)" }
            + excludeSchemas.map { "--exclude-schema=\($0)" } + excludeTableData.map { "--exclude-table-data=\($0)" }
    }
}

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
    /// Small tables packed together (format 4); absent when every table has objects of its own.
    public var packs: [PackRecord]?

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
        [preData, postData] + (ddlIndex.map { [$0] } ?? []) + tables.flatMap(\.objects) + (packs ?? []).map(\.object)
            + (globals.map { [$0] } ?? []) + (largeObjects ?? [])
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

/// The manifest file, `<backup-id>/manifest.json`. Writing it is the commit point of a backup.
public struct ManifestFile: Codable, Sendable {
    public static let formatName = "drkit-backup"
    /// 2 adds `objects`, the plaintext object index. 3 is written only for backups holding large
    /// objects, so that a drkit that does not know them refuses the backup instead of restoring it
    /// without them. 4 likewise, only for backups with packed small tables (`packs`), which an older
    /// drkit would restore empty. Version 1 to 3 files keep reading.
    public static let currentVersion = 4
    public static let objectName = "manifest.json"

    public var format: String
    public var formatVersion: Int
    public var summary: BackupSummary
    /// Every stored object with its size and SHA-256 (format 2), so that `repo copy` can check what it
    /// moves without the key. Like the summary it is plaintext: `open` refuses a file whose index
    /// disagrees with the (authenticated) manifest.
    public var objects: [StoredObject]?
    /// Format 1 only: the key envelope (format 2 keeps envelopes as objects of their own).
    public var encryption: KeyEnvelope?
    /// The manifest, sealed with the data key (base64) when encrypted...
    public var sealedManifest: String?
    /// ...or in the clear when the backup was made with `--no-encrypt`.
    public var manifest: BackupManifest?

    /// A format-2 manifest file. Its key envelope is not inside: the backup stores it as an object of
    /// its own (`keys/<fingerprint>.json`), so that rotating keys never edits the manifest.
    public static func make(_ manifest: BackupManifest, summary: BackupSummary, dataKey: [UInt8]?) throws -> ManifestFile {
        var file = ManifestFile(format: formatName, formatVersion: formatVersion(of: manifest), summary: summary,
                                objects: manifest.allObjects.map(StoredObject.init), encryption: nil, sealedManifest: nil, manifest: nil)
        if let dataKey {
            let plain = try JSONCoding.encoder.encode(manifest)
            let sealed = try StreamingAEAD.seal([UInt8](plain), dataKey: dataKey, objectName: "\(manifest.backupId)/\(objectName)")
            file.sealedManifest = Data(sealed).base64EncodedString()
        } else {
            file.manifest = manifest
        }
        return file
    }

    /// The oldest format that holds everything the backup uses.
    static func formatVersion(of manifest: BackupManifest) -> Int {
        manifest.packs != nil ? 4 : manifest.largeObjects != nil ? 3 : 2
    }

    public static func decode(_ bytes: [UInt8]) throws -> ManifestFile {
        let file: ManifestFile
        do {
            file = try JSONCoding.decoder.decode(ManifestFile.self, from: Data(bytes))
        } catch {
            throw ArchiveError(.malformed, "manifest is not valid JSON of the drkit-backup format")
        }
        guard file.format == formatName else { throw ArchiveError(.malformed, "not a drkit manifest (format \(file.format))") }
        guard file.formatVersion <= currentVersion else {
            throw ArchiveError(.malformed, "manifest format version \(file.formatVersion) is newer than this drkit understands (\(currentVersion))")
        }
        guard file.formatVersion < 2 || file.objects != nil else {
            throw ArchiveError(.malformed, "manifest of \(file.summary.backupId) is format \(file.formatVersion) but has no object index")
        }
        return file
    }

    public func encoded() throws -> [UInt8] { [UInt8](try JSONCoding.encoder.encode(self)) }

    /// The full manifest; `dataKey` is needed when the backup is encrypted. The plaintext summary is
    /// checked against it: any field that differs means the summary was edited, and is refused.
    public func open(dataKey: [UInt8]?) throws -> BackupManifest {
        let manifest = try openBody(dataKey: dataKey)
        try checkSummary(against: manifest)
        return manifest
    }

    /// Every summary field `list`, `restore latest`, drills and retention act on, compared with the
    /// manifest (authenticated by the data key when the backup is encrypted).
    func checkSummary(against manifest: BackupManifest) throws {
        let objects = manifest.allObjects
        let fields: [(String, Bool)] = [
            ("backupId", summary.backupId == manifest.backupId),
            ("database", summary.database == manifest.source.database),
            ("serverVersion", summary.serverVersion == manifest.source.serverVersion),
            ("toolVersion", summary.toolVersion == manifest.toolVersion),
            ("snapshotTime", summary.snapshotTime == manifest.snapshotTime),
            ("startedAt", summary.startedAt == manifest.startedAt),
            ("finishedAt", summary.finishedAt == manifest.finishedAt),
            ("tableCount", summary.tableCount == manifest.tables.count),
            ("objectCount", summary.objectCount == objects.count),
            ("storedBytes", summary.storedBytes == objects.reduce(0) { $0 + $1.size }),
            ("encrypted", summary.encrypted == isEncrypted),
            // Format 1: the envelope in this file; format 2: the key the backup was made with, inside the manifest.
            ("keyFingerprint", summary.keyFingerprint == (encryption?.kek.fingerprint ?? manifest.keyFingerprint)),
            ("objects", self.objects == nil || self.objects! == objects.map(StoredObject.init)),
            ("run", summary.run == manifest.run),
            ("globals", (summary.globals ?? false) == (manifest.globals != nil)),
            ("partial", (summary.partial ?? false) == (manifest.selection != nil)),
        ]
        let differing = fields.filter { !$0.1 }.map(\.0)
        guard differing.isEmpty else {
            throw ArchiveError(.authenticationFailed, "the plaintext summary of backup \(summary.backupId) disagrees with its \(isEncrypted ? "authenticated " : "")manifest (\(differing.joined(separator: ", "))): it was edited in the repository; refusing it")
        }
    }

    /// The stored objects with their sizes and hashes: from the index (format 2) or the clear manifest,
    /// without a key; a format-1 encrypted backup needs `dataKey` to open its sealed manifest.
    public func storedObjects(dataKey: [UInt8]?) throws -> [StoredObject] {
        if let objects { return objects }
        return try open(dataKey: dataKey).allObjects.map(StoredObject.init)
    }

    public var isEncrypted: Bool { sealedManifest != nil || encryption != nil }

    /// Whether the object list can be read without a key.
    public var objectsReadableWithoutKey: Bool { objects != nil || manifest != nil }

    private func openBody(dataKey: [UInt8]?) throws -> BackupManifest {
        if let manifest { return manifest }
        guard let sealedManifest, let sealed = Data(base64Encoded: sealedManifest) else {
            throw ArchiveError(.malformed, "manifest of \(summary.backupId) has no body")
        }
        guard let dataKey else { throw ArchiveError(.wrongKey, "backup \(summary.backupId) is encrypted: give --key-file, DRKIT_KEY or --passphrase-env") }
        let plain = try StreamingAEAD.open([UInt8](sealed), dataKey: dataKey, objectName: "\(summary.backupId)/\(ManifestFile.objectName)")
        let manifest = try JSONCoding.decoder.decode(BackupManifest.self, from: Data(plain))
        guard manifest.backupId == summary.backupId else {
            throw ArchiveError(.authenticationFailed, "manifest body belongs to backup \(manifest.backupId), not \(summary.backupId)")
        }
        return manifest
    }
}

public enum JSONCoding {
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Timestamps.iso8601(date))
        }
        return e
    }

    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Timestamps.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad timestamp \(text)"))
            }
            return date
        }
        return d
    }
}

