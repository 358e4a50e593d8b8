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

/// A backup taken on a hot standby: its data are as of the last commit the standby had replayed.
public struct StandbyRecord: Codable, Equatable, Sendable {
    /// `pg_last_xact_replay_timestamp()` when the snapshot was taken (nil: none replayed since it started).
    public var lastReplayedCommit: Date?
    /// How far replay was behind what the standby had received, in seconds (0 when it had replayed all of it).
    public var replayLagSeconds: Double

    public init(lastReplayedCommit: Date?, replayLagSeconds: Double) {
        self.lastReplayedCommit = lastReplayedCommit
        self.replayLagSeconds = replayLagSeconds
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
