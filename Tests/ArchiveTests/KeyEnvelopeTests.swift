import XCTest
import Foundation
@testable import Archive
import Common

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
