import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Archive
import Common

/// Backups sealed to age recipients, against the `age` tool (Debian's package) as the peer: either of
/// two identities restores alone, a third is refused (exit 5); `age -d -i` on the envelope yields the
/// data key, and `drkit cat --data-key-file` plus `zstd -dc` read the data with it, as the runbook says;
/// a host holding only the recipients (and a signing key) backs up, lists, copies and runs retention,
/// and cannot restore, verify or cat.
final class AgeRecipientTests: DRKitTestCase {
    private func tool(_ name: String) throws -> String {
        guard let path = ["/usr/bin/\(name)", "/usr/local/bin/\(name)"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            XCTFail("\(name) is not installed (scripts/setup.sh installs it)")
            throw DRKitError(.tool, "\(name) missing")
        }
        return path
    }

    private func file(_ name: String) -> String { workDirectory.appendingPathComponent(name).path }

    /// One identity from drkit, one from age-keygen; returns their files and recipients.
    private func identities() throws -> [(identity: String, recipient: String)] {
        let ours = file("ours.txt")
        let made = try Command.drkit(["key", "generate", "--type", "age", "--out", ours])
        XCTAssertEqual(made.status, 0, made.stderr)
        let recipient = try XCTUnwrap(made.stdout.split(separator: "\n").first { $0.hasPrefix("recipient: ") }).dropFirst("recipient: ".count)
        let theirs = file("theirs.txt")
        let keygen = try Command.run(try tool("age-keygen"), ["-o", theirs])
        XCTAssertEqual(keygen.status, 0, keygen.stderr)
        let public2 = try XCTUnwrap(String(contentsOfFile: theirs, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("# public key: ") })
        return [(ours, String(recipient)), (theirs, String(public2.dropFirst("# public key: ".count)))]
    }

    func testEitherRecipientRestoresAloneAndTheEnvelopeOpensByHand() throws {
        let source = try newDatabase("age_src", sql: "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 2000) g;")
        let pair = try identities()
        let backup = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--recipient", pair[0].recipient,
                                        "--recipients-file", try { let f = file("recipients.txt"); try "# escrow\n\(pair[1].recipient)\n".write(toFile: f, atomically: true, encoding: .utf8); return f }(),
                                        "--quiet", "--json"])
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
        for (index, identity) in pair.enumerated() {
            let target = scratchName("age_r\(index)")
            let restored = try Command.drkit(["restore", id, "--repo", repo, "--identity", identity.identity, "--target", try conninfo(target), "--quiet"])
            XCTAssertEqual(restored.status, 0, restored.stderr)
            try assertSameDatabase(source, target)
        }
        let stranger = file("stranger.txt")
        XCTAssertEqual(try Command.drkit(["key", "generate", "--type", "age", "--out", stranger]).status, 0)
        let refused = try Command.drkit(["restore", id, "--repo", repo, "--identity", stranger, "--target", try conninfo(scratchName("age_no"))])
        XCTAssertEqual(refused.status, 5, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("none of the 1 age identity given opens backup \(id)"), refused.stderr)

        // A drill rehearses it with an identity (the restore host's).
        let drill = try Command.drkit(["drill", "--repo", repo, "--identity", pair[0].identity, "--restore-latest", "--target", try conninfo("postgres"),
                                       "--evidence-dir", file("drill-evidence"), "--audit-file", file("audit.jsonl")])
        XCTAssertEqual(drill.status, 0, drill.stdout + drill.stderr)

        // By hand: age opens the envelope, the data key opens an object, zstd reads it.
        let envelopes = try FileManager.default.contentsOfDirectory(atPath: repo + "/\(id)/keys").filter { $0.hasSuffix(".age") }
        XCTAssertEqual(envelopes.count, 1)
        let dataKey = file("data.key")
        let opened = try Command.run(try tool("age"), ["-d", "-i", pair[1].identity, "-o", dataKey, repo + "/\(id)/keys/" + envelopes[0]])
        XCTAssertEqual(opened.status, 0, opened.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dataKey)).count, 32)
        let object = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: repo + "/\(id)/data").sorted().first)
        let drkit = TestServices.drkitExecutable
        let pipeline = try Command.run("/bin/bash", ["-c", "set -o pipefail; \"$0\" cat \"$1\" \"data/$2\" --repo \"$3\" --data-key-file \"$4\" | zstd -dc | wc -l",
                                                     drkit, id, object, repo, dataKey])
        XCTAssertEqual(pipeline.status, 0, pipeline.stderr)
        XCTAssertEqual(pipeline.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "2000")
        // A key and recipients together: either kind opens the backup.
        let both = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--recipient", pair[0].recipient, "--quiet", "--json"])
        XCTAssertEqual(both.status, 0, both.stderr)
        let bothId = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(both.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
        XCTAssertEqual(try Command.drkit(["verify", bothId, "--repo", repo, "--key-file", keyFile, "--quiet"]).status, 0)
        XCTAssertEqual(try Command.drkit(["verify", bothId, "--repo", repo, "--identity", pair[0].identity, "--quiet"]).status, 0)
    }

    func testAHostWithOnlyRecipientsBacksUpListsCopiesAndForgetsButCannotRead() throws {
        let source = try newDatabase("age_host", sql: "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);")
        let pair = try identities()
        let signing = file("host.key")
        XCTAssertEqual(try Command.drkit(["key", "generate", "--type", "signing", "--out", signing]).status, 0)
        // The host's whole configuration: recipients and its signing key, no DRKIT_KEY.
        let host = ["DRKIT_KEY": "", "DRKIT_SIGNING_KEY": signing]
        var ids: [String] = []
        for _ in 0..<3 {
            let made = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--recipient", pair[0].recipient, "--recipient", pair[1].recipient, "--quiet", "--json"], environment: host)
            XCTAssertEqual(made.status, 0, made.stderr)
            ids.append(try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])?["backupId"] as? String))
        }
        let listed = try Command.drkit(["list", "--repo", repo, "--json"], environment: host)
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertEqual(try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]).count, 3)
        let second = workDirectory.appendingPathComponent("second").path
        let copied = try Command.drkit(["repo", "copy", "--all", "--from", repo, "--to", second], environment: host)
        XCTAssertEqual(copied.status, 0, copied.stderr)
        for reader in [["restore", "latest", "--target", try conninfo(scratchName("age_host_r"))], ["verify", "latest"], ["cat", "latest", "schema/pre-data.sql.zst.enc"]] {
            let refused = try Command.drkit(reader + ["--repo", second], environment: host)
            XCTAssertEqual(refused.status, 2, reader[0] + ": " + refused.stderr)
            XCTAssertTrue(refused.stderr.contains("a host that holds only recipients cannot read backups"), refused.stderr)
        }
        // Retention on signed facts: the newest is kept, the others removed; the copy opens with an identity.
        let forgot = try Command.drkit(["forget", "--repo", second, "--keep-last", "1", "--execute", "--json"], environment: host)
        XCTAssertEqual(forgot.status, 0, forgot.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(forgot.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((report["decisions"] as? [[String: Any]])?.filter { $0["keep"] as? Bool == true }.compactMap { $0["backupId"] as? String }, [ids[2]])
        let restored = try Command.drkit(["restore", "latest", "--repo", second, "--identity", pair[1].identity, "--target", try conninfo(scratchName("age_host_ok")), "--quiet"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let verifiedList = try Command.drkit(["list", "--repo", second, "--identity", pair[0].identity, "--json"])
        XCTAssertEqual(verifiedList.status, 0, verifiedList.stderr)
        XCTAssertEqual(try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(verifiedList.stdout.utf8)) as? [[String: Any]]).compactMap { $0["verified"] as? Bool }, [true])
        // Facts edited in storage (to make the newest look old) are refused, naming the backup.
        let facts = repo + "/\(ids[2])/keys/retention.facts"
        let text = try String(contentsOfFile: facts, encoding: .utf8)
        try text.replacingOccurrences(of: "\"snapshotTime\" : \"2", with: "\"snapshotTime\" : \"1").write(toFile: facts, atomically: true, encoding: .utf8)
        let forged = try Command.drkit(["forget", "--repo", repo, "--keep-last", "1"], environment: host)
        XCTAssertEqual(forged.status, 5, forged.stderr)
        XCTAssertTrue(forged.stderr.contains("retention facts of backup \(ids[2]) are not authentic"), forged.stderr)
    }

    /// Files either side writes, the other reads, at the 64 KiB chunk boundaries and with two recipients.
    func testAgeFilesInteroperateWithTheAgeTool() throws {
        let pair = try identities()
        let identity = try XCTUnwrap(try Age.Identity.parseFile(String(contentsOfFile: pair[1].identity, encoding: .utf8)).first)
        for size in [0, 1, 65_536, 65_537, 200_000] {
            let plaintext = SecureRandom.bytes(size)
            let ours = file("ours-\(size).age")
            try Data(try Age.encrypt(plaintext, to: [try Age.Recipient.parse(pair[0].recipient), identity.recipient])).write(to: URL(fileURLWithPath: ours))
            for key in pair.map(\.identity) {
                let out = file("out-\(size)")
                let opened = try Command.run(try tool("age"), ["-d", "-i", key, "-o", out, ours])
                XCTAssertEqual(opened.status, 0, "size \(size): " + opened.stderr)
                // age creates its output at the first byte: an empty plaintext leaves no file.
                XCTAssertEqual(FileManager.default.contents(atPath: out).map { [UInt8]($0) } ?? [], plaintext, "size \(size)")
            }
            let input = file("plain-\(size)")
            try Data(plaintext).write(to: URL(fileURLWithPath: input))
            let theirs = file("theirs-\(size).age")
            let sealed = try Command.run(try tool("age"), ["-r", pair[0].recipient, "-r", pair[1].recipient, "-o", theirs, input])
            XCTAssertEqual(sealed.status, 0, sealed.stderr)
            XCTAssertEqual(try Age.decrypt([UInt8](try Data(contentsOf: URL(fileURLWithPath: theirs))), identities: [identity]), plaintext, "size \(size)")
        }
    }

    /// From a symmetric key to recipients and back, each rotation killed (SIGKILL) at seeded random
    /// moments and then run again: at every stop, every backup opens with the old or the new key, and no
    /// object but envelopes was added or removed (write-once).
    func testRotationToRecipientsAndBackSurvivesKillsAtAnyPoint() throws {
        let source = try newDatabase("age_rot", sql: "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50);")
        let pair = try identities()
        let newKey = file("k2")
        XCTAssertEqual(try Command.drkit(["key", "generate", "--out", newKey]).status, 0)
        let ids = try (0..<6).map { _ -> String in
            let made = try Command.drkit(["backup", "--db", try conninfo(source), "--repo", repo, "--key-file", keyFile, "--quiet", "--json"])
            XCTAssertEqual(made.status, 0, made.stderr)
            return try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])?["backupId"] as? String)
        }
        func dataObjects() throws -> [String: Data] {
            var all: [String: Data] = [:]
            for id in ids {
                for name in try FileManager.default.subpathsOfDirectory(atPath: repo + "/" + id) where !name.hasPrefix("keys") {
                    var isDirectory: ObjCBool = false
                    if FileManager.default.fileExists(atPath: repo + "/\(id)/\(name)", isDirectory: &isDirectory), !isDirectory.boolValue {
                        all["\(id)/\(name)"] = try Data(contentsOf: URL(fileURLWithPath: repo + "/\(id)/\(name)"))
                    }
                }
            }
            return all
        }
        let before = try dataObjects()
        func opens(_ id: String, _ key: [String]) throws -> Bool {
            try Command.drkit(["verify", id, "--repo", repo, "--quiet"] + key).status == 0
        }
        var random = SeededGenerator(seed: 27)
        let steps: [(rotate: [String], old: [String], new: [String])] = [
            (["--key-file", keyFile, "--new-recipient", pair[0].recipient, "--new-recipient", pair[1].recipient], ["--key-file", keyFile], ["--identity", pair[1].identity]),
            (["--identity", pair[0].identity, "--new-key-file", newKey], ["--identity", pair[0].identity], ["--key-file", newKey]),
        ]
        for step in steps {
            for _ in 0..<3 {
                let process = try Command.startDrkit(["key", "rotate", "--repo", repo] + step.rotate, environment: ["DRKIT_KEY": ""])
                usleep(UInt32.random(in: 20_000...400_000, using: &random))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                // A killed rotation may leave its lease: a live-process check on this host removes it.
                for id in ids { XCTAssertTrue(try opens(id, step.old) || opens(id, step.new), "\(id) opens with neither key after a kill") }
            }
            let finished = try Command.drkit(["key", "rotate", "--repo", repo] + step.rotate, environment: ["DRKIT_KEY": ""])
            XCTAssertEqual(finished.status, 0, finished.stderr)
            for id in ids {
                XCTAssertTrue(try opens(id, step.new), id)
                XCTAssertFalse(try opens(id, step.old), "\(id): the old key was retired")
            }
        }
        XCTAssertEqual(try dataObjects(), before, "no data object or manifest changed")
    }
}
