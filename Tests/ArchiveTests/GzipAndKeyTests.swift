import XCTest
import Foundation
@testable import Archive
import Common

final class GzipTests: XCTestCase {
    func testRoundTripAndConcatenatedMembers() throws {
        let a = Array(String(repeating: "row\tvalue\n", count: 50_000).utf8)
        let b = Array("tail\n".utf8)
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress(a)), a)
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress(a) + Gzip.compress(b, level: 1)), a + b)
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress([])), [])
    }

    func testTruncatedAndCorruptStreamsFail() throws {
        let gz = try Gzip.compress(Array(String(repeating: "abc", count: 10_000).utf8))
        XCTAssertThrowsError(try Gzip.decompress(Array(gz.prefix(gz.count - 4)))) {
            XCTAssertEqual(($0 as? ArchiveError)?.kind, .truncated)
        }
        var corrupt = gz
        corrupt[gz.count / 2] ^= 0xFF
        XCTAssertThrowsError(try Gzip.decompress(corrupt))
    }

    func testOutputIsReadableByGunzip() throws {
        let plain = Array("COPY text\twith tabs\n".utf8)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("drkit-\(UUID().uuidString).gz")
        try Data(try Gzip.compress(plain)).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -dc '\(file.path)'"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual([UInt8](out), plain)
    }
}

final class KeyEnvelopeTests: XCTestCase {
    func testKeyWrapRoundTripAndWrongKey() throws {
        let kek = SecureRandom.bytes(32)
        let (envelope, dataKey) = try KeyEnvelope.create(backupId: "b1", source: .key(kek))
        XCTAssertEqual(try envelope.unwrap(backupId: "b1", source: .key(kek)), dataKey)
        XCTAssertEqual(envelope.kek.fingerprint, KeyEnvelope.fingerprint(ofKey: kek))
        XCTAssertThrowsError(try envelope.unwrap(backupId: "b1", source: .key(SecureRandom.bytes(32)))) {
            XCTAssertEqual(($0 as? ArchiveError)?.kind, .wrongKey)
        }
        // Moving a wrapped key to another backup's manifest does not work.
        XCTAssertThrowsError(try envelope.unwrap(backupId: "b2", source: .key(kek)))
    }

    func testPassphraseAndRewrap() throws {
        let (envelope, dataKey) = try KeyEnvelope.create(backupId: "b", source: .passphrase("correct horse"))
        XCTAssertEqual(envelope.kek.kind, "passphrase")
        XCTAssertNotNil(envelope.kek.scrypt)
        XCTAssertEqual(try envelope.unwrap(backupId: "b", source: .passphrase("correct horse")), dataKey)
        XCTAssertThrowsError(try envelope.unwrap(backupId: "b", source: .passphrase("wrong horse")))
        let newKey = SecureRandom.bytes(32)
        let rotated = try envelope.rewrapped(backupId: "b", from: .passphrase("correct horse"), to: .key(newKey))
        XCTAssertEqual(try rotated.unwrap(backupId: "b", source: .key(newKey)), dataKey, "data key survives rotation")
        XCTAssertThrowsError(try rotated.unwrap(backupId: "b", source: .passphrase("correct horse")))
    }

    func testKeyFileFormats() throws {
        let raw = SecureRandom.bytes(32)
        XCTAssertEqual(try KeySource.parseKey(raw), raw)
        XCTAssertEqual(try KeySource.parseKey(Array((Hex.encode(raw) + "\n").utf8)), raw)
        XCTAssertEqual(try KeySource.parseKey(Array((Data(raw).base64EncodedString() + "\n").utf8)), raw)
        XCTAssertEqual(try KeySource.parseKey(Array(KeySource.generateKeyText().utf8)).count, 32)
        XCTAssertThrowsError(try KeySource.parseKey(Array("too short".utf8)))
    }

    func testManifestSealedWithoutTableNamesInPlaintext() throws {
        let kek = SecureRandom.bytes(32)
        let at = Date(timeIntervalSince1970: 1_700_000_000.125)
        let (envelope, dataKey) = try KeyEnvelope.create(backupId: "20260101T000000Z-abcdef", source: .key(kek))
        let object = ObjectRecord(name: "data/00000.0000.copy.gz.enc", size: 1, sha256: "00", plainBytes: 1, rows: 1)
        let manifest = BackupManifest(
            backupId: "20260101T000000Z-abcdef", toolVersion: "t", source: SourceRecord(database: "db", serverVersion: "15", serverVersionNum: 150000, systemIdentifier: "1", encoding: "UTF8"),
            snapshotTime: at, startedAt: at, finishedAt: at, compression: .init(algorithm: "gzip", level: 6),
            preData: object, postData: object,
            tables: [TableRecord(schema: "secret_schema", name: "payroll_table", kind: "table", columns: ["salary"], rows: 1, plainBytes: 1, objects: [object])],
            sequences: [], materializedViews: [], keyFingerprint: envelope.kek.fingerprint)
        let summary = BackupSummary(backupId: manifest.backupId, toolVersion: "t", database: "db", serverVersion: "15", snapshotTime: at, startedAt: at, finishedAt: at, tableCount: 1, objectCount: 3, storedBytes: 3, encrypted: true, keyFingerprint: envelope.kek.fingerprint)
        let file = try ManifestFile.make(manifest, summary: summary, dataKey: dataKey)
        let text = String(decoding: try file.encoded(), as: UTF8.self)
        XCTAssertFalse(text.contains("payroll_table"))
        XCTAssertFalse(text.contains("secret_schema"))
        XCTAssertFalse(text.contains("salary"))
        let decoded = try ManifestFile.decode(try file.encoded())
        XCTAssertEqual(try decoded.open(dataKey: dataKey), manifest)
    }
}

final class GzipFramingTests: XCTestCase {
    func testForeignGzipIsReadThroughZlib() throws {
        let plain = Array(String(repeating: "line from another tool\n", count: 20_000).utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -c"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(plain))
        try input.fileHandleForWriting.close()
        let gz = [UInt8](output.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        XCTAssertEqual(try Gzip.decompress(gz), plain)
        // drkit members followed by a foreign member still read as one stream.
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress(plain) + gz), plain + plain)
    }

    func testMultiMemberFramingAndLengthField() throws {
        let plain = SecureRandom.bytes(3 * GzipCompressor.defaultBlockSize + 123)
        let gz = try Gzip.compress(plain, level: 1)
        XCTAssertEqual(try Gzip.decompress(gz), plain)
        let firstLength = gz.withUnsafeBytes { GzipFraming.memberLength($0) }
        XCTAssertNotNil(firstLength)
        XCTAssertLessThan(firstLength!, gz.count, "several members")
        var wrongCRC = gz
        wrongCRC[firstLength! - 8] ^= 1
        XCTAssertThrowsError(try Gzip.decompress(wrongCRC))
    }

    func testNewlineCountingMatchesAByteLoop() {
        for size in [0, 1, 7, 8, 9, 63, 64, 1000] {
            var bytes = SecureRandom.bytes(size)
            for i in stride(from: 0, to: size, by: 3) { bytes[i] = 0x0A }
            let expected = bytes.filter { $0 == 0x0A }.count
            XCTAssertEqual(bytes.withUnsafeBytes { LineCountingSink.countNewlines($0) }, expected, "size \(size)")
        }
        let awkward: [UInt8] = [0x0A, 0x8A, 0x0B, 0x09, 0xFF, 0x00, 0x0A, 0x0A, 0x8A, 0x0A]
        XCTAssertEqual(awkward.withUnsafeBytes { LineCountingSink.countNewlines($0) }, 4)
    }
}
