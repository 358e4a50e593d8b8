import Foundation
import Common

/// The table of contents of a pg_dump custom-format archive (`pg_dump -Fc --schema-only`): every DDL
/// entry pg_dump would print, with pg_dump's own dependency graph. A backup stores it (`schema/toc.json`)
/// so that a partial restore can take exactly the entries some tables need, by pg_dump's reckoning,
/// from the plain scripts whose entries carry the same type, schema and name in their headers.
public struct DumpTOC: Codable, Equatable, Sendable {
    public struct Entry: Codable, Equatable, Sendable {
        public var id: Int
        /// 1 none, 2 pre-data, 3 data, 4 post-data (pg_dump's teSection).
        public var section: Int
        /// pg_dump's `desc`: TABLE, INDEX, FK CONSTRAINT, ...; the plain script's `Type:`.
        public var type: String
        /// The plain script's `Schema:` (nil prints as `-`).
        public var schema: String?
        /// pg_dump's `tag`; the plain script's `Name:`.
        public var name: String
        public var dependencies: [Int]
    }

    public var entries: [Entry]

    public static let postDataSection = 4

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses the archive header and TOC (formats 1.12 to 1.16: pg_dump 11 to 18).
    public static func parse(_ bytes: [UInt8]) throws -> DumpTOC {
        var reader = Reader(bytes: bytes)
        guard bytes.count > 11, Array(bytes[0..<5]) == Array("PGDMP".utf8) else { throw Malformed(description: "not a pg_dump custom-format archive") }
        reader.position = 5
        let version = (Int(try reader.byte()), Int(try reader.byte()), Int(try reader.byte()))
        guard version.0 == 1, (12...16).contains(version.1) else {
            throw Malformed(description: "pg_dump archive version \(version.0).\(version.1) is not one drkit reads (1.12 to 1.16)")
        }
        reader.intSize = Int(try reader.byte())
        reader.offsetSize = Int(try reader.byte())
        guard try reader.byte() == 1 else { throw Malformed(description: "not a custom-format archive") }
        if version.1 >= 15 { _ = try reader.byte() } else { _ = try reader.int() }  // compression
        for _ in 0..<7 { _ = try reader.int() }  // creation time
        for _ in 0..<3 { _ = try reader.string() }  // database, server version, pg_dump version
        let count = try reader.int()
        var entries: [Entry] = []
        entries.reserveCapacity(max(count, 0))
        for _ in 0..<count {
            let id = try reader.int()
            _ = try reader.int()  // has a data dumper
            _ = try reader.string(); _ = try reader.string()  // table oid, oid
            let tag = try reader.string() ?? ""
            let type = try reader.string() ?? ""
            let section = try reader.int()
            _ = try reader.string(); _ = try reader.string(); _ = try reader.string()  // definition, drop, copy statements
            let namespace = try reader.string()
            _ = try reader.string()  // tablespace
            _ = try reader.string()  // table access method
            if version.1 >= 16 { _ = try reader.int() }  // relkind
            _ = try reader.string()  // owner
            _ = try reader.string()  // "with oids", always false
            var dependencies: [Int] = []
            while let dependency = try reader.string() { dependencies.append(Int(dependency) ?? -1) }
            _ = try reader.byte()  // data state
            reader.position += reader.offsetSize  // data offset
            entries.append(Entry(id: id, section: section, type: type, schema: namespace, name: tag, dependencies: dependencies))
        }
        return DumpTOC(entries: entries)
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0
        var intSize = 4
        var offsetSize = 8

        mutating func byte() throws -> UInt8 {
            guard position < bytes.count else { throw Malformed(description: "pg_dump archive ends early") }
            defer { position += 1 }
            return bytes[position]
        }

        /// A sign byte, then `intSize` bytes, least significant first.
        mutating func int() throws -> Int {
            let negative = try byte() != 0
            var value = 0
            for shift in 0..<intSize { value |= Int(try byte()) << (8 * shift) }
            return negative ? -value : value
        }

        /// A length (-1 for NULL), then that many bytes.
        mutating func string() throws -> String? {
            let length = try int()
            guard length >= 0 else { return nil }
            guard position + length <= bytes.count else { throw Malformed(description: "pg_dump archive ends inside a string") }
            defer { position += length }
            return String(decoding: bytes[position..<position + length], as: UTF8.self)
        }
    }
}
