import XCTest
import Foundation
import TestSupport
@testable import DRKit
import ObjectStorage
import PostgresClient
import Common

/// `drkit stream` straight into S3: moto (signatures checked) and Ceph RGW (a real implementation),
/// with Object Lock on every segment there; `forget` leaves a locked segment alone.
final class StreamOnS3Tests: StreamTestCase {
    func testStreamToMotoRestoresFromIt() throws { try streamToS3(try TestServices.s3(), profile: "moto", lock: false) }

    func testStreamToCephWithObjectLockLocksEverySegment() throws { try streamToS3(try TestServices.rgw(), profile: "ceph", lock: true) }

    private func streamToS3(_ server: TestServices.S3, profile: String, lock: Bool) throws {
        let identities = try TestServices.twoIdentities(in: workDirectory)
        var bucket = server.bucket
        if lock {
            bucket = "drkit-pitr-\(UUID().uuidString.prefix(8).lowercased())"
            let created = try Command.run("/bin/sh", ["-c", "aws --endpoint-url \(server.endpoint) s3api create-bucket --bucket \(bucket) --object-lock-enabled-for-bucket"],
                                          environment: server.environment())
            XCTAssertEqual(created.status, 0, created.stderr)
        }
        let prefix = "pitr-\(UUID().uuidString.prefix(8).lowercased())"
        let remote = "s3://\(bucket)/\(prefix)?endpoint=\(server.endpoint.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&profile=\(profile)"
        let database = try newDatabase("pitr_s3", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')")
        let (stream, log) = try startStream(database, repository: remote, environment: identities,
                                            extra: lock ? ["--object-lock", "governance", "--lock-days", "1"] : [])
        var settings = StorageSettings()
        settings.environment = identities
        let repository = try Repository.open(remote, create: false, s3: settings)
        try waitUntil("the linked base backup", log: log) {
            try repository.backups().contains { $0.summary.database == database && $0.summary.streamPosition != nil }
        }
        for id in 2...4 {
            try PostgresClientBridge.execute("INSERT INTO t VALUES (\(id), repeat('x', \(id * 1000))); UPDATE t SET v = v || '!' WHERE id = 1", in: database)
            try waitUntilArchived(database, log: log)
            if id == 3 {  // a second base, linked: what came before it is no longer needed once the first is forgotten
                let second = try Command.drkit(["backup", "--db", try conninfo(database), "--repo", remote, "--key-file", keyFile]
                                               + (lock ? ["--object-lock", "governance", "--lock-days", "1"] : []), environment: identities)
                XCTAssertEqual(second.status, 0, second.stderr)
            }
        }
        XCTAssertEqual(stopStream(stream, log: log), 0)

        let archive = StreamArchive(repository: repository)
        let lineage = try XCTUnwrap(try archive.lineages(database: database).last)
        let segments = try archive.segments(of: lineage.lineage)
        XCTAssertFalse(segments.isEmpty)
        if lock, let reader = repository.store as? ObjectLockReading {
            for segment in segments {
                let retention = try XCTUnwrap(try reader.lock(of: segment.key), "\(segment.key) has no retention")
                XCTAssertEqual(retention.mode, .governance)
            }
            // The first base is past --keep-last 1 but locked, so forget keeps it, and with it every segment it needs.
            let forget = try Command.drkit(["forget", "--repo", remote, "--key-file", keyFile, "--keep-last", "1", "--execute"], environment: identities)
            XCTAssertEqual(forget.status, 0, forget.stderr)
            XCTAssertTrue(forget.stdout.contains("retained until"), forget.stdout)
            XCTAssertEqual(try archive.segments(of: lineage.lineage).count, segments.count, "the locked base's segments stay")
        }
        let verified = try Command.drkit(["verify", "--changes", "--repo", remote, "--key-file", keyFile], environment: identities)
        XCTAssertEqual(verified.status, 0, verified.stderr)
        let restored = scratchName("pitr_s3_r")
        let result = try Command.drkit(["restore", "latest", "--repo", remote, "--target", try conninfo(restored), "--key-file", keyFile, "--to-latest"],
                                       environment: identities)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try DatabaseFingerprint.contentHashes(try conninfo(restored)), try DatabaseFingerprint.contentHashes(try conninfo(database)))
    }
}
