import ObjectStorage
import Foundation
import Common

/// `drkit storage check`: validates a repository's storage the way a runbook would, with probe
/// objects under `drkit-storage-check/` that it removes again. Each check says what failed and the fix.
public enum StorageCheck {
    public struct Check: Codable, Sendable {
        public var name: String
        public var passed: Bool
        /// What was measured or found (e.g. "3.2 ms", "enabled governance, 30 days").
        public var figure: String
        /// On failure: what is wrong and what to do.
        public var problem: String?
    }

    public struct Report: Codable, Sendable {
        public var repository: String
        public var checks: [Check]
        public var passed: Bool { checks.allSatisfy(\.passed) }
    }

    public static func run(_ repository: Repository) -> Report {
        let store = repository.store
        let folder = "drkit-storage-check/\(SecureRandom.hex(6))"
        let probe = SecureRandom.bytes(64 * 1024)
        var checks: [Check] = []
        var timings: [Double] = []
        func check(_ name: String, _ body: () throws -> String) {
            let start = Date()
            do {
                let figure = try body()
                timings.append(Date().timeIntervalSince(start))
                checks.append(Check(name: name, passed: true, figure: figure, problem: nil))
            } catch {
                checks.append(Check(name: name, passed: false, figure: "failed", problem: explain(error, step: name, location: store.location)))
            }
        }
        check("list") { "\(try store.listFolders(prefix: "").count) top-level folders" }
        guard checks[0].passed else { return Report(repository: store.location, checks: checks) }
        check("put") { try store.put(key: "\(folder)/probe", bytes: probe); return "64 KiB" }
        check("get") {
            guard try store.get(key: "\(folder)/probe") == probe else { throw StorageError(.failed, "the probe came back different") }
            return "64 KiB, identical"
        }
        check("range read") {
            let sink = BufferSink()
            try store.read(key: "\(folder)/probe", range: 1000..<1100, into: sink)
            guard sink.bytes == Array(probe[1000..<1100]) else { throw StorageError(.failed, "a ranged GET returned other bytes") }
            return "100 bytes at offset 1000"
        }
        check("list prefix") {
            guard try store.list(prefix: "\(folder)/").map(\.key) == ["\(folder)/probe"] else { throw StorageError(.failed, "the probe is not listed") }
            return "probe listed"
        }
        if let s3 = store as? StorageProbing {
            check("multipart") { try s3.probeMultipart(folder: folder) }
            check("clock skew") {
                guard let server = try s3.serverTime() else { return "server sent no Date" }
                let skew = Date().timeIntervalSince(server)
                guard abs(skew) < 300 else {
                    throw StorageError(.failed, "this machine's clock is \(Int(skew)) s off the server's; SigV4 signatures are refused past 15 minutes: sync the clock (NTP)")
                }
                return String(format: "%+.1f s", skew)
            }
            check("object lock") { try s3.objectLockStatus() }
            if checks.last?.passed == true, checks.last?.figure.hasPrefix("enabled") == true {
                check("locked multipart") { try s3.probeLockedMultipart(folder: folder) }
            }
        }
        check("delete") {
            try store.delete(keys: try store.list(prefix: "\(folder)/").map(\.key))
            guard try store.list(prefix: "\(folder)/").isEmpty else { throw StorageError(.failed, "probe objects are still listed after DeleteObjects") }
            guard let s3 = store as? StorageProbing else { return "probe objects removed" }
            // A versioned bucket (every Object Lock bucket is one) keeps the versions behind delete markers.
            let versions = try s3.purgeVersions(prefix: "\(folder)/")
            return versions == 0 ? "probe objects removed" : "probe objects removed, with all \(versions) versions and delete markers"
        }
        let sorted = timings.sorted()
        checks.append(Check(name: "latency", passed: true, figure: sorted.isEmpty ? "-" : String(format: "median %.1f ms over %d requests", sorted[sorted.count / 2] * 1000, sorted.count), problem: nil))
        return Report(repository: store.location, checks: checks)
    }

    /// One line: what failed and what to do about it.
    static func explain(_ error: Error, step: String, location: String) -> String {
        let message = (error as? StorageError)?.message ?? DRKitError.wrap(error).message
        switch (error as? StorageError)?.kind {
        case .denied? where message.contains("authentication failed"):
            return message  // wrong key or secret: no permission is missing
        case .denied?:
            let permission = ["put": "s3:PutObject", "get": "s3:GetObject", "range read": "s3:GetObject", "list": "s3:ListBucket",
                              "list prefix": "s3:ListBucket", "multipart": "s3:PutObject and s3:AbortMultipartUpload",
                              "locked multipart": "s3:PutObjectRetention", "delete": "s3:DeleteObject (and s3:DeleteObjectVersion, s3:BypassGovernanceRetention on a versioned bucket)"][step] ?? "access"
            return "\(message): the credentials lack \(permission) on \(location)"
        case .unreachable?:
            return "\(message): check the endpoint, that the server runs, and that the bucket exists"
        default:
            if message.contains("HTTP 5") {
                return "\(message): the store is failing (server error); retry later, and check the storage service's health and status page"
            }
            return message
        }
    }
}
