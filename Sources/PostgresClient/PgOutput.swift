import Foundation

/// The messages of PostgreSQL's built-in logical decoding plugin, `pgoutput`, protocol version 1
/// (the "Logical Replication Message Formats" chapter of the PostgreSQL documentation). Values are
/// in their text form, as the type's output function writes them.
public enum PgOutput {
    public struct Column: Codable, Equatable, Sendable {
        public var name: String
        public var typeOid: UInt32
        public var typeModifier: Int32
        /// Part of the replica identity (the primary key, or every column with REPLICA IDENTITY FULL).
        public var isKey: Bool

        public init(name: String, typeOid: UInt32, typeModifier: Int32, isKey: Bool) {
            self.name = name
            self.typeOid = typeOid
            self.typeModifier = typeModifier
            self.isKey = isKey
        }
    }

    public struct Relation: Codable, Equatable, Sendable {
        public var id: UInt32
        public var schema: String
        public var name: String
        /// `d` default (primary key), `n` nothing, `f` full, `i` an index.
        public var replicaIdentity: String
        public var columns: [Column]

        public init(id: UInt32, schema: String, name: String, replicaIdentity: String, columns: [Column]) {
            self.id = id
            self.schema = schema
            self.name = name
            self.replicaIdentity = replicaIdentity
            self.columns = columns
        }

        /// The same table with the same columns in the same order and types: rows decoded with one
        /// apply to the other.
        public func sameShape(as other: Relation) -> Bool {
            schema == other.schema && name == other.name && columns == other.columns
        }
    }

    public enum Value: Equatable, Sendable {
        case null
        /// A TOASTed value the UPDATE did not change: not sent, and left as it is.
        case unchanged
        case text(String)
    }

    public enum Message: Equatable, Sendable {
        case begin(finalLSN: LSN, commitTime: Int64, xid: UInt32)
        case commit(commitLSN: LSN, endLSN: LSN, commitTime: Int64)
        case relation(Relation)
        case insert(relation: UInt32, new: [Value])
        /// `old`: the key columns ('K') or the whole old row ('O', REPLICA IDENTITY FULL), sent when
        /// the key changed or the identity is full; otherwise the key is in `new`.
        case update(relation: UInt32, old: [Value]?, new: [Value])
        case delete(relation: UInt32, old: [Value])
        case truncate(relations: [UInt32], cascade: Bool, restartIdentity: Bool)
        /// A message a session wrote with `pg_logical_emit_message` (sent with the `messages` option):
        /// a transactional one arrives inside its transaction, in order with its rows.
        case message(transactional: Bool, prefix: String, content: [UInt8])
        /// Origin and Type messages: not needed to replay rows.
        case other(UInt8)
    }

    public static func decode(_ bytes: [UInt8]) throws -> Message {
        var reader = WireReader(bytes)
        let kind = try reader.byte()
        switch kind {
        case UInt8(ascii: "B"):
            let final = LSN(try reader.uint64())
            let time = Int64(bitPattern: try reader.uint64())
            return .begin(finalLSN: final, commitTime: time, xid: try reader.uint32())
        case UInt8(ascii: "C"):
            _ = try reader.byte()  // flags, unused
            let commit = LSN(try reader.uint64())
            let end = LSN(try reader.uint64())
            return .commit(commitLSN: commit, endLSN: end, commitTime: Int64(bitPattern: try reader.uint64()))
        case UInt8(ascii: "R"):
            let id = try reader.uint32()
            let schema = try reader.cString()
            let name = try reader.cString()
            let identity = String(UnicodeScalar(try reader.byte()))
            let count = Int(try reader.uint16())
            var columns: [Column] = []
            columns.reserveCapacity(count)
            for _ in 0..<count {
                let flags = try reader.byte()
                let columnName = try reader.cString()
                let type = try reader.uint32()
                let modifier = Int32(bitPattern: try reader.uint32())
                columns.append(Column(name: columnName, typeOid: type, typeModifier: modifier, isKey: flags & 1 == 1))
            }
            return .relation(Relation(id: id, schema: schema.isEmpty ? "pg_catalog" : schema, name: name,
                                      replicaIdentity: identity, columns: columns))
        case UInt8(ascii: "I"):
            let relation = try reader.uint32()
            guard try reader.byte() == UInt8(ascii: "N") else { throw malformed("INSERT without a new row") }
            return .insert(relation: relation, new: try tuple(&reader))
        case UInt8(ascii: "U"):
            let relation = try reader.uint32()
            var old: [Value]?
            var marker = try reader.byte()
            if marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") {
                old = try tuple(&reader)
                marker = try reader.byte()
            }
            guard marker == UInt8(ascii: "N") else { throw malformed("UPDATE without a new row") }
            return .update(relation: relation, old: old, new: try tuple(&reader))
        case UInt8(ascii: "D"):
            let relation = try reader.uint32()
            let marker = try reader.byte()
            guard marker == UInt8(ascii: "K") || marker == UInt8(ascii: "O") else { throw malformed("DELETE without the old key") }
            return .delete(relation: relation, old: try tuple(&reader))
        case UInt8(ascii: "T"):
            let count = Int(try reader.uint32())
            let options = try reader.byte()
            var relations: [UInt32] = []
            for _ in 0..<count { relations.append(try reader.uint32()) }
            return .truncate(relations: relations, cascade: options & 1 != 0, restartIdentity: options & 2 != 0)
        case UInt8(ascii: "M"):
            let flags = try reader.byte()
            _ = try reader.uint64()  // the message's own LSN: its place is its order in the transaction
            let prefix = try reader.cString()
            let length = Int(try reader.uint32())
            return .message(transactional: flags & 1 == 1, prefix: prefix, content: Array(try reader.take(length)))
        default:
            return .other(kind)
        }
    }

    private static func tuple(_ reader: inout WireReader) throws -> [Value] {
        let count = Int(try reader.uint16())
        var values: [Value] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            switch try reader.byte() {
            case UInt8(ascii: "n"): values.append(.null)
            case UInt8(ascii: "u"): values.append(.unchanged)
            case UInt8(ascii: "t"):
                let length = Int(try reader.uint32())
                values.append(.text(String(decoding: try reader.take(length), as: UTF8.self)))
            case let other:
                throw malformed("unknown column kind \(other) (only the text format of protocol 1 is requested)")
            }
        }
        return values
    }

    private static func malformed(_ what: String) -> PostgresError {
        PostgresError(.protocolViolation, "pgoutput: \(what)")
    }
}
