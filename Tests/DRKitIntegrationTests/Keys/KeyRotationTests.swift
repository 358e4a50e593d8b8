import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// D1: an interrupted `key rotate` is finished by running it again; a finished one says "already
/// rotated"; and the final message names exactly the keys that still open the backups. On a
/// directory, moto and Ceph RGW.
final class KeyRotationTests: DRKitTestCase {
    private var identities: [String: String] = [:]

    override func setUpWithError() throws {
        try super.setUpWithError()
        identities = try TestServices.twoIdentities(in: workDirectory)
    }

    private func drkit(_ args: [String]) throws -> CommandResult { try Command.drkit(args, environment: identities) }

    private func newKey(_ name: String) throws -> String {
        let path = workDirectory.appendingPathComponent(name).path
        XCTAssertEqual(try Command.drkit(["key", "generate", "--out", path]).status, 0)
        return path
    }

    private func rotate(_ repository: String, _ old: String, _ new: String, _ extra: [String] = []) throws -> String {
        let result = try drkit(["key", "rotate", "--repo", repository, "--key-file", old, "--new-key-file", new] + extra)
        XCTAssertEqual(result.status, 0, "\(repository): \(result.stderr)")
        return result.stdout
    }

    private func opens(_ repository: String, _ id: String, _ key: String) throws -> Bool {
        try drkit(["verify", id, "--repo", repository, "--key-file", key, "--quiet"]).status == 0
    }

    func testInterruptedRotationsFinishAndTheMessageNamesEveryKeyThatOpens() throws {
        let source = try newDatabase("drkit_rotate_d1", sql: "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50);")
        let runId = "rotate-\(UUID().uuidString.prefix(8).lowercased())"
        let repositories = [workDirectory.appendingPathComponent("rotate-local").path,
                            try TestServices.s3().repository(runId, profile: "moto"), try TestServices.rgw().repository(runId, profile: "ceph")]
        let k1 = keyFile, k2 = try newKey("k2"), k3 = try newKey("k3"), k4 = try newKey("k4"), k5 = try newKey("k5")
        for repository in repositories {
            let ids = try (0..<3).map { _ -> String in
                let made = try drkit(["backup", "--db", try conninfo(source), "--repo", repository, "--key-file", k1, "--json"])
                XCTAssertEqual(made.status, 0, made.stderr)
                return try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
            }
            // A rotation killed in its removal phase: every backup has k2's envelope, one has lost k1's.
            let store = try Repository.open(repository, create: false, s3: { var s = StorageSettings(); s.environment = identities; return s }())
            _ = try KeyRotation.run(repository: store, from: .key(try KeySource.parseKey(Array(try Data(contentsOf: URL(fileURLWithPath: k1))))),
                                    to: .key(try KeySource.parseKey(Array(try Data(contentsOf: URL(fileURLWithPath: k2))))), keepOld: true)
            let k1Envelope = try XCTUnwrap(try store.store.list(prefix: "\(ids[0])/\(KeyEnvelopes.folder)/").map(\.key)
                .first { $0.hasSuffix(KeyEnvelope.fingerprint(ofKey: try KeySource.parseKey(Array(try Data(contentsOf: URL(fileURLWithPath: k1))))) + ".json") })
            try store.store.delete(keys: [k1Envelope])

            let finished = try rotate(repository, k1, k2)
            XCTAssertTrue(finished.contains("re-wrapped the data keys of 2 backup(s); 1 were rotated by an earlier, interrupted run (finished now)"), finished)
            XCTAssertTrue(finished.contains("only the new key opens these backups"), finished)
            for id in ids {
                XCTAssertFalse(try opens(repository, id, k1), "\(repository) \(id): k1 retired")
                XCTAssertTrue(try opens(repository, id, k2), "\(repository) \(id)")
            }
            XCTAssertTrue(try rotate(repository, k1, k2).contains("already rotated: all 3 encrypted backup(s) open with the new key"))

            // k2 kept by one rotation, then k3 → k4: the message says k2 still opens them, and it does.
            _ = try rotate(repository, k2, k3, ["--keep-old-key"])
            let next = try rotate(repository, k3, k4)
            let k2Fingerprint = KeyEnvelope.fingerprint(ofKey: try KeySource.parseKey(Array(try Data(contentsOf: URL(fileURLWithPath: k2)))))
            XCTAssertTrue(next.contains("key \(k2Fingerprint) also opens 3 backup(s)"), next)
            XCTAssertFalse(next.contains("only the new key opens"), next)
            XCTAssertTrue(try opens(repository, ids[1], k2), "what the message says holds")
            let retired = try rotate(repository, k4, k5, ["--retire-all-other-keys"])
            XCTAssertTrue(retired.contains("removed 3 envelope(s) of other keys") && retired.contains("only the new key opens these backups"), retired)
            for id in ids {
                for key in [k1, k2, k3, k4] { XCTAssertFalse(try opens(repository, id, key), "\(repository) \(id)") }
                XCTAssertTrue(try opens(repository, id, k5))
            }
        }
    }
}
