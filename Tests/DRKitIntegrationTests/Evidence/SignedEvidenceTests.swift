import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

/// Signed drill and gate evidence, checked by drkit and by minisign itself (Debian's package, the
/// interoperability peer): every file verifies; a one-byte edit, a removed or added file and a
/// signature by another key are each caught by both; keys made by `minisign -G -W` sign too.
final class SignedEvidenceTests: DRKitTestCase {
    private var keys: URL { workDirectory.appendingPathComponent("keys") }

    private func minisign(_ arguments: [String]) throws -> CommandResult {
        guard let path = ["/usr/bin/minisign", "/usr/local/bin/minisign"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            XCTFail("minisign is not installed (scripts/setup.sh installs it)")
            throw DRKitError(.tool, "minisign missing")
        }
        return try Command.run(path, arguments)
    }

    private func signingKey(_ name: String) throws -> String {
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        let path = keys.appendingPathComponent(name).path
        let made = try Command.drkit(["key", "generate", "--type", "signing", "--out", path])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertTrue(made.stdout.contains("key id "), made.stdout)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try Command.drkit(["key", "generate", "--type", "signing", "--out", path]).status, 6, "never overwrites a key")
        return path
    }

    private func verify(_ folder: String, key: String) throws -> CommandResult {
        try Command.drkit(["evidence", "verify", folder, "--public-key", key])
    }

    func testSignedDrillEvidenceVerifiesWithMinisignAndDrkitAndEveryTamperingIsNamed() throws {
        let source = try newDatabase("sig_src", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g;")
        let key = try signingKey("drkit.key")
        let evidence = workDirectory.appendingPathComponent("evidence/2026-12/drill-1").path
        let drill = try Command.drkit(["drill", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--fresh-backup",
                                       "--evidence-dir", evidence, "--audit-file", workDirectory.appendingPathComponent("audit.jsonl").path,
                                       "--signing-key", key])
        XCTAssertEqual(drill.status, 0, drill.stdout + drill.stderr)
        let signed = ["backup.log", "drill-record.html", "drill-record.md", "evidence-chain.json", "evidence.json", "rowcount.csv"]
        for name in signed {
            let checked = try minisign(["-V", "-m", evidence + "/" + name, "-p", key + ".pub"])
            XCTAssertEqual(checked.status, 0, name + ": " + checked.stdout + checked.stderr)
            XCTAssertTrue(checked.stdout.contains("file:\(name)"), checked.stdout)
        }
        XCTAssertEqual(try minisign(["-V", "-m", evidence + "/SHA256SUMS", "-p", key + ".pub"]).status, 0)
        // The chain names the audit trail's head and the manifest the drill restored.
        let chain = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: evidence + "/evidence-chain.json"))) as? [String: Any])
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: evidence + "/evidence.json"))) as? [String: Any])
        let backupId = try XCTUnwrap(report["backupId"] as? String)
        XCTAssertEqual(chain["backupId"] as? String, backupId)
        let manifest = try Data(contentsOf: URL(fileURLWithPath: repo + "/\(backupId)/manifest.json"))
        XCTAssertEqual(chain["backupManifestSHA256"] as? String, Hex.encode(SHA256.hash([UInt8](manifest))))
        let records = try Command.drkit(["audit", "list", "--audit-file", workDirectory.appendingPathComponent("audit.jsonl").path, "--json"])
        let audited = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(records.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(chain["auditRecords"] as? Int, audited.count)
        XCTAssertEqual(chain["auditHeadHash"] as? String, audited.last?["hash"] as? String)

        // A year of folders: the parent is searched; all good.
        let year = workDirectory.appendingPathComponent("evidence").path
        let good = try verify(year, key: key + ".pub")
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr)
        XCTAssertTrue(good.stdout.contains("OK \(evidence): 6 files signed"), good.stdout)

        // Another key: both refuse.
        let other = try signingKey("other.key")
        XCTAssertNotEqual(try minisign(["-V", "-m", evidence + "/evidence.json", "-p", other + ".pub"]).status, 0)
        let wrongKey = try verify(evidence, key: other + ".pub")
        XCTAssertEqual(wrongKey.status, 1)
        XCTAssertTrue(wrongKey.stdout.contains("SHA256SUMS: signed by key"), wrongKey.stdout)

        // The key may not come from the folder it checks.
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: year + "/drkit.pub")
        let inside = try verify(year, key: year + "/drkit.pub")
        XCTAssertEqual(inside.status, 2)
        XCTAssertTrue(inside.stderr.contains("lies inside"), inside.stderr)
        try FileManager.default.removeItem(atPath: year + "/drkit.pub")

        // One flipped byte in each signed file in turn: minisign and drkit name it; restored, all good again.
        for name in signed {
            let path = evidence + "/" + name
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            var edited = original
            edited[edited.count / 2] ^= 0x01
            try edited.write(to: URL(fileURLWithPath: path))
            XCTAssertNotEqual(try minisign(["-V", "-m", path, "-p", key + ".pub"]).status, 0, name)
            let caught = try verify(evidence, key: key + ".pub")
            XCTAssertEqual(caught.status, 1, name)
            XCTAssertTrue(caught.stdout.contains("edited: \(name)"), caught.stdout)
            try original.write(to: URL(fileURLWithPath: path))
        }
        XCTAssertEqual(try verify(evidence, key: key + ".pub").status, 0)

        // Removed and added files, a signature replaced by one of another key over the same file.
        let log = try Data(contentsOf: URL(fileURLWithPath: evidence + "/backup.log"))
        try FileManager.default.removeItem(atPath: evidence + "/backup.log")
        try "planted\n".write(toFile: evidence + "/notes.txt", atomically: true, encoding: .utf8)
        let changed = try verify(evidence, key: key + ".pub")
        XCTAssertEqual(changed.status, 1)
        XCTAssertTrue(changed.stdout.contains("removed: backup.log") && changed.stdout.contains("added: notes.txt"), changed.stdout)
        try log.write(to: URL(fileURLWithPath: evidence + "/backup.log"))
        try FileManager.default.removeItem(atPath: evidence + "/notes.txt")
        let otherSecret = try Minisign.SecretKey.parse(String(contentsOfFile: other, encoding: .utf8))
        try otherSecret.sign([UInt8](log), trustedComment: "forged").write(toFile: evidence + "/backup.log.minisig", atomically: true, encoding: .utf8)
        let forged = try verify(evidence, key: key + ".pub")
        XCTAssertEqual(forged.status, 1)
        XCTAssertTrue(forged.stdout.contains("backup.log.minisig: signed by key"), forged.stdout)
        XCTAssertNotEqual(try minisign(["-V", "-m", evidence + "/backup.log", "-p", key + ".pub"]).status, 0)

        // verify --evidence-dir signs its record too, bound to the same manifest.
        let verifyEvidence = workDirectory.appendingPathComponent("evidence/2026-12/verify-1").path
        let verified = try Command.drkit(["verify", backupId, "--repo", repo, "--key-file", keyFile, "--evidence-dir", verifyEvidence, "--signing-key", key])
        XCTAssertEqual(verified.status, 0, verified.stdout + verified.stderr)
        XCTAssertEqual(try minisign(["-V", "-m", verifyEvidence + "/verify-record.md", "-p", key + ".pub"]).status, 0)
        let verifyChain = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: verifyEvidence + "/evidence-chain.json"))) as? [String: Any])
        XCTAssertEqual(verifyChain["backupManifestSHA256"] as? String, chain["backupManifestSHA256"] as? String)
        let checked = try verify(verifyEvidence, key: key + ".pub")
        XCTAssertEqual(checked.status, 0, checked.stdout + checked.stderr)
    }

    func testGateEvidenceSignedWithAKeyMinisignMade() throws {
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        let secret = keys.appendingPathComponent("minisign.key").path
        let made = try minisign(["-G", "-W", "-p", secret + ".pub", "-s", secret])
        XCTAssertEqual(made.status, 0, made.stdout + made.stderr)
        let checklist = workDirectory.appendingPathComponent("checklist.yaml").path
        try "name: signed\nsteps:\n  - name: hello\n    kind: command\n    run: \"echo hello\"\n".write(toFile: checklist, atomically: true, encoding: .utf8)
        let evidence = workDirectory.appendingPathComponent("gate-evidence").path
        let gate = try Command.drkit(["gate", checklist, "--evidence-dir", evidence, "--audit-file", workDirectory.appendingPathComponent("audit.jsonl").path],
                                     environment: ["DRKIT_SIGNING_KEY": secret])
        XCTAssertEqual(gate.status, 0, gate.stdout + gate.stderr)
        for name in ["evidence.json", "gate-record.md", "evidence-chain.json", "SHA256SUMS"] {
            XCTAssertEqual(try minisign(["-V", "-m", evidence + "/" + name, "-p", secret + ".pub"]).status, 0, name)
        }
        let verified = try verify(evidence, key: secret + ".pub")
        XCTAssertEqual(verified.status, 0, verified.stdout + verified.stderr)
        // An unsigned folder is named as such; --signing-key without --evidence-dir is a usage error.
        let unsigned = workDirectory.appendingPathComponent("unsigned").path
        XCTAssertEqual(try Command.drkit(["gate", checklist, "--evidence-dir", unsigned, "--audit-file", workDirectory.appendingPathComponent("audit.jsonl").path]).status, 0)
        let refused = try verify(unsigned, key: secret + ".pub")
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stdout.contains("not signed"), refused.stdout)
        XCTAssertEqual(try Command.drkit(["gate", checklist, "--signing-key", secret]).status, 2)
        // A password-protected minisign key gets one clear line.
        let encrypted = keys.appendingPathComponent("encrypted.key").path
        var text = try String(contentsOfFile: secret, encoding: .utf8).split(separator: "\n").map(String.init)
        var body = [UInt8](Data(base64Encoded: text[1])!)
        body[2] = UInt8(ascii: "S"); body[3] = UInt8(ascii: "c")
        text[1] = Data(body).base64EncodedString()
        try (text.joined(separator: "\n") + "\n").write(toFile: encrypted, atomically: true, encoding: .utf8)
        let locked = try Command.drkit(["gate", checklist, "--evidence-dir", evidence, "--signing-key", encrypted])
        XCTAssertEqual(locked.status, 2)
        XCTAssertTrue(locked.stderr.contains("protected by a password"), locked.stderr)
    }
}
