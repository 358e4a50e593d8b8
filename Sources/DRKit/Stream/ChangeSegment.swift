import Archive
import PostgresClient
import Foundation
import Common

/// A sequence's value at the end of a segment (sequences are not part of logical replication).
public struct SequenceValue: Codable, Equatable, Sendable {
    public var schema: String
    public var name: String
    public var lastValue: String
}

/// A table whose definition changed while the stream ran: replaying rows past it with the old
/// definition would be wrong, so a replay refuses to cross it (docs/runbooks/point-in-time-recovery.md).
public struct TableDefinitionChange: Codable, Equatable, Sendable {
    public var table: String
    /// The commit of the first transaction that used the new definition.
    public var position: LSN
    public var commitTime: Int64
}

/// The authenticated description of one change segment: the first frame of its plain content.
public struct SegmentHeader: Codable, Equatable, Sendable {
    public static let formatName = "drkit-changes"
    public static let currentVersion = 1

    public var format = formatName
    public var formatVersion = currentVersion
    public var lineage: String
    public var database: String
    /// 1, 2, 3... within the lineage, without gaps.
    public var number: Int
    /// The segment before this one (nil for a lineage's first) and the SHA-256 of its stored bytes:
    /// a removed, swapped or edited segment breaks the chain.
    public var previousObject: String?
    public var previousSHA256: String?
    /// Every transaction whose commit ends after `startPosition` and at or before `endPosition` is here.
    public var startPosition: LSN
    public var endPosition: LSN
    public var firstCommit: Int64
    public var lastCommit: Int64
    public var transactions: Int
    public var changes: Int
    /// The tables (pgoutput relations) known when the segment starts; Relation messages inside it update them.
    public var relations: [PgOutput.Relation]
    public var sequences: [SequenceValue]
    public var schemaChanges: [TableDefinitionChange]
    public var writtenAt: Date
}

/// The plain content of a change segment, before compression and encryption:
///
///     "DRKITCHG1\n" | u32 BE length | header JSON | (u32 BE length | pgoutput message)*
///
/// The messages are pgoutput's (protocol 1) exactly as the server sent them: Begin, Relation,
/// Insert, Update, Delete, Truncate, Commit, whole transactions only.
public enum ChangeSegment {
    static let magic = Array("DRKITCHG1\n".utf8)

    public static func encode(header: SegmentHeader, messages: [UInt8]) throws -> [UInt8] {
        let json = [UInt8](try JSONCoding.encoder.encode(header))
        var bytes = magic
        bytes.reserveCapacity(magic.count + 4 + json.count + messages.count)
        appendFrame(json, to: &bytes)
        bytes.append(contentsOf: messages)
        return bytes
    }

    /// Appends one length-prefixed frame.
    public static func appendFrame<C: Collection>(_ frame: C, to bytes: inout [UInt8]) where C.Element == UInt8 {
        let length = UInt32(frame.count)
        bytes.append(UInt8(length >> 24)); bytes.append(UInt8(length >> 16 & 0xFF))
        bytes.append(UInt8(length >> 8 & 0xFF)); bytes.append(UInt8(length & 0xFF))
        bytes.append(contentsOf: frame)
    }

    public struct Decoded {
        public var header: SegmentHeader
        public var messages: [ArraySlice<UInt8>]
    }

    public static func decode(_ bytes: [UInt8], name: String) throws -> Decoded {
        guard bytes.starts(with: magic) else { throw DRKitError(.integrity, "change segment \(name) is not a drkit change segment") }
        var offset = magic.count
        func frame() throws -> ArraySlice<UInt8> {
            guard offset + 4 <= bytes.count else { throw DRKitError(.integrity, "change segment \(name) is truncated") }
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard offset + 4 + length <= bytes.count else { throw DRKitError(.integrity, "change segment \(name) is truncated") }
            defer { offset += 4 + length }
            return bytes[(offset + 4)..<(offset + 4 + length)]
        }
        let header: SegmentHeader
        do { header = try JSONCoding.decoder.decode(SegmentHeader.self, from: Data(try frame())) } catch let e as DRKitError { throw e } catch {
            throw DRKitError(.integrity, "change segment \(name) has an unreadable header")
        }
        guard header.format == SegmentHeader.formatName, header.formatVersion <= SegmentHeader.currentVersion else {
            throw DRKitError(.integrity, "change segment \(name) is format \(header.format) \(header.formatVersion), which this drkit cannot read")
        }
        var messages: [ArraySlice<UInt8>] = []
        while offset < bytes.count { messages.append(try frame()) }
        return Decoded(header: header, messages: messages)
    }
}

/// What a segment's object name says, so `list` and `forget` can work without the key. The
/// authenticated header must say the same; a reader refuses a segment whose name lies.
public struct SegmentName: Equatable, Sendable, Comparable {
    public var number: Int
    public var startPosition: LSN
    public var endPosition: LSN
    public var lastCommit: Int64

    static let folder = "segments"

    public var base: String {
        "\(SegmentName.folder)/\(String(format: "%010d", number))-\(startPosition.fixedWidth)-\(endPosition.fixedWidth)-\(CommitTime.compact(lastCommit)).changes"
    }

    public func objectName(codec: Codec, encrypted: Bool) -> String {
        base + codec.fileExtension + (encrypted ? ".enc" : "")
    }

    /// From an object key's last path element (`0000000001-...-...-...Z.changes.zst.enc`).
    public init?(objectName: String) {
        let file = objectName.split(separator: "/").last.map(String.init) ?? objectName
        guard let stem = file.components(separatedBy: ".changes").first, file.contains(".changes") else { return nil }
        let parts = stem.split(separator: "-").map(String.init)
        guard parts.count == 4, parts[0].count == 10, let number = Int(parts[0]),
              parts[1].count == 16, let start = UInt64(parts[1], radix: 16),
              parts[2].count == 16, let end = UInt64(parts[2], radix: 16),
              let last = CommitTime.parseCompact(parts[3]) else { return nil }
        self.init(number: number, startPosition: LSN(start), endPosition: LSN(end), lastCommit: last)
    }

    public init(number: Int, startPosition: LSN, endPosition: LSN, lastCommit: Int64) {
        self.number = number
        self.startPosition = startPosition
        self.endPosition = endPosition
        self.lastCommit = lastCommit
    }

    public static func < (a: SegmentName, b: SegmentName) -> Bool { a.number < b.number }
}
