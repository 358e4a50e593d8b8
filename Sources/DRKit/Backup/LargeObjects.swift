import Archive
import PostgresClient
import Foundation
import Common

/// Large object contents in a backup. Their definitions (OIDs, owners, ACLs, comments) come from
/// pg_dump's pre-data up to pg_dump 16, and from `definitions` with pg_dump 17 and later (which moved
/// them into its data section, beside the contents drkit stores itself); the contents are packed into objects of their own as a stream of records,
/// each `oid (u32) | offset (u64) | length (u32) | bytes`, big-endian, one or more per large object
/// (a large one is read and written in 1 MiB pieces; an empty one has a single zero-length record).
/// Objects hold whole large objects, up to the split size each, so restore loads them in parallel.
enum LargeObjects {
    static let pieceBytes = 1 << 20

    struct Entry: Sendable {
        var oid: UInt32
        var size: Int64
    }

    /// Every large object and its size, as of the snapshot `connection` reads.
    static func list(_ connection: Connection) throws -> [Entry] {
        do {
            // INV_READ descriptors read the transaction's snapshot; each is closed once measured.
            return try connection.query("""
                WITH opened AS (SELECT oid, lo_open(oid, 262144) AS fd FROM pg_largeobject_metadata)
                SELECT oid::text, lo_lseek64(fd, 0, 2)::text, lo_close(fd) FROM opened ORDER BY oid
                """).rows.map { Entry(oid: UInt32($0[0]!) ?? 0, size: Int64($0[1]!) ?? 0) }
        } catch {
            throw DRKitError.wrap(error, "listing large objects (the backup user needs SELECT on each, or superuser)")
        }
    }

    /// The definitions pg_dump 16 writes into pre-data, as entries of the same shape (so `--no-owner`
    /// and `--no-privileges` leave out the same lines): `lo_create` and the owner, then the privileges
    /// when they differ from the default (granted in the ACL's own order, so it reads back the same),
    /// then the comment. Read in the backup's snapshot.
    static func definitions(_ connection: Connection) throws -> [UInt8] {
        let rows: [[String?]]
        do {
            rows = try connection.query("""
                SELECT m.oid::text, pg_catalog.pg_get_userbyid(m.lomowner),
                       (SELECT string_agg(format('GRANT %s ON LARGE OBJECT %s TO %s%s;', a.privilege_type, m.oid,
                                                 CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
                                                 CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
                                          E'\n' ORDER BY a.n)
                        FROM pg_catalog.aclexplode(m.lomacl) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, n)),
                       m.lomacl IS NOT NULL,
                       pg_catalog.obj_description(m.oid, 'pg_largeobject')
                FROM pg_catalog.pg_largeobject_metadata m ORDER BY m.oid
                """).rows
        } catch {
            throw DRKitError.wrap(error, "reading the large objects' owners, privileges and comments")
        }
        var script = "\n"
        for row in rows {
            guard let oid = row[0], let owner = row[1] else { continue }
            let ownerName = Connection.quoteIdentifier(owner)
            func header(_ name: String, _ type: String) -> String {
                "--\n-- Name: \(name); Type: \(type); Schema: -; Owner: \(owner)\n--\n\n"
            }
            script += header(oid, "BLOB") + "SELECT pg_catalog.lo_create('\(oid)');\n\n\nALTER LARGE OBJECT \(oid) OWNER TO \(ownerName);\n\n"
            if row[3] == "t" {
                // An explicit ACL replaces the default (the owner's SELECT and UPDATE) entirely.
                script += header("LARGE OBJECT \(oid)", "ACL")
                    + "REVOKE ALL ON LARGE OBJECT \(oid) FROM PUBLIC;\nREVOKE ALL ON LARGE OBJECT \(oid) FROM \(ownerName);\n"
                    + (row[2].map { $0 + "\n" } ?? "") + "\n"
            }
            if let comment = row[4] {
                script += header("LARGE OBJECT \(oid)", "COMMENT") + "COMMENT ON LARGE OBJECT \(oid) IS \(Connection.quoteLiteral(comment));\n\n"
            }
        }
        return Array(script.utf8)
    }

    /// Consecutive large objects grouped into batches of about `targetBytes` (one large one alone).
    static func batches(_ entries: [Entry], targetBytes: Int64) -> [[Entry]] {
        var batches: [[Entry]] = []
        var current: [Entry] = []
        var bytes: Int64 = 0
        for entry in entries {
            if !current.isEmpty && (bytes + entry.size > targetBytes || current.count >= 100_000) {
                batches.append(current)
                (current, bytes) = ([], 0)
            }
            current.append(entry)
            bytes += entry.size
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// Reads a batch's contents on a connection in the backup's snapshot and writes its records:
    /// small large objects many per query, larger ones a piece at a time, so memory stays bounded.
    static func dump(_ batch: [Entry], on connection: Connection, into write: (UInt32, Int64, [UInt8]) throws -> Void) throws {
        var small: [Entry] = []
        var smallBytes: Int64 = 0
        func flushSmall() throws {
            guard !small.isEmpty else { return }
            let list = small.map { String($0.oid) }.joined(separator: ",")
            // One row per OID, in the list's order.
            let rows = try connection.queryBinary("SELECT lo_get(o) FROM unnest('{\(list)}'::oid[]) WITH ORDINALITY AS t(o, n) ORDER BY n")
            guard rows.count == small.count else { throw DRKitError(.tool, "read \(rows.count) of \(small.count) large objects") }
            for (entry, row) in zip(small, rows) { try write(entry.oid, 0, row[0] ?? []) }
            (small, smallBytes) = ([], 0)
        }
        for entry in batch {
            if entry.size <= Int64(pieceBytes) {
                if smallBytes + entry.size > Int64(pieceBytes) || small.count >= 1000 { try flushSmall() }
                small.append(entry)
                smallBytes += entry.size
                continue
            }
            try flushSmall()
            var offset: Int64 = 0
            while offset < entry.size {
                let piece = try connection.queryBinary("SELECT lo_get($1::oid, $2::bigint, \(pieceBytes))",
                                                       [.text(String(entry.oid)), .text(String(offset))]).first?.first ?? nil
                guard let piece, !piece.isEmpty else { break }
                try write(entry.oid, offset, piece)
                offset += Int64(piece.count)
            }
        }
        try flushSmall()
    }

    static func header(oid: UInt32, offset: Int64, length: Int) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: oid >> UInt32(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: UInt64(offset) >> UInt64(shift))) }
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: UInt32(length) >> UInt32(shift))) }
        return bytes
    }
}

/// Parses the large object record stream of one object, handing each piece on as it completes
/// (never more than one piece, 1 MiB, in memory). Counts the large objects (records at offset 0)
/// and refuses a stream that ends inside a record.
final class LargeObjectStreamParser: ByteSink {
    private let piece: (UInt32, Int64, [UInt8]) throws -> Void
    private var header: [UInt8] = []
    private var body: [UInt8] = []
    private var expected = 0
    private(set) var largeObjects: Int64 = 0
    private(set) var contentBytes: Int64 = 0

    init(piece: @escaping (UInt32, Int64, [UInt8]) throws -> Void) { self.piece = piece }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var index = 0
        while index < bytes.count {
            if header.count < 16 {
                let take = min(16 - header.count, bytes.count - index)
                header.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                if header.count == 16 {
                    expected = Int(header[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                    guard expected <= LargeObjects.pieceBytes else { throw DRKitError(.integrity, "large object record longer than a piece") }
                    body.reserveCapacity(expected)
                    if expected == 0 { try emit() }
                }
                continue
            }
            let take = min(expected - body.count, bytes.count - index)
            body.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
            index += take
            if body.count == expected { try emit() }
        }
    }

    private func emit() throws {
        let oid = header[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let offset = Int64(bitPattern: header[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        if offset == 0 { largeObjects += 1 }
        contentBytes += Int64(body.count)
        try piece(oid, offset, body)
        header.removeAll(keepingCapacity: true)
        body.removeAll(keepingCapacity: true)
    }

    func finish() throws {
        guard header.isEmpty else { throw DRKitError(.integrity, "large object stream ends inside a record (truncated)") }
    }
}

/// Writes pieces into large objects that pre-data created (`lo_create` with their OIDs), each as a
/// binary parameter; the caller runs it inside one transaction per object.
struct LargeObjectWriter {
    let connection: Connection

    func write(oid: UInt32, offset: Int64, bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        _ = try connection.queryBinary("SELECT pg_catalog.lo_put($1::oid, $2::bigint, $3::bytea)",
                                       [.text(String(oid)), .text(String(offset)), .bytes(bytes)])
    }
}
