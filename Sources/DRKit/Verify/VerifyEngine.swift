import Archive
import ObjectStorage
import Foundation
import Common

public struct VerifyReport: Codable, Sendable {
    public struct Failure: Codable, Sendable, Equatable {
        public var object: String
        /// schema.table for data objects, "pre-data"/"post-data" for DDL.
        public var content: String
        public var reason: String
    }

    public var backupId: String
    public var passed: Bool
    public var objectsChecked: Int
    public var rowsChecked: Int64
    public var storedBytes: Int64
    public var plainBytes: Int64
    public var durationSeconds: Double
    public var failures: [Failure]
    /// Objects in the backup folder that the manifest does not name (not a failure).
    public var unlistedObjects: [String]
}

/// Reads back every object of a backup with no database: authenticates and decrypts, decompresses,
/// and checks size, SHA-256 and COPY row counts against the manifest.
public final class VerifyEngine: Sendable {
    let repository: Repository
    let keys: KeyOptions
    let jobs: Int
    let showProgress: Bool
    let console: Console

    public init(repository: Repository, keys: KeyOptions, jobs: Int = 2, showProgress: Bool = true, console: Console = .shared) {
        self.repository = repository
        self.keys = keys
        self.jobs = jobs
        self.showProgress = showProgress
        self.console = console
    }

    public func run(reference: String) throws -> VerifyReport {
        let start = Date()
        let opened = try repository.openBackup(reference, keys: keys)
        let (backupId, manifest) = (opened.backupId, opened.manifest)
        let objects = try opened.objects(in: repository)
        var work: [(record: ObjectRecord, content: String, kind: ContentKind)] = [
            (manifest.preData, "pre-data", .opaque), (manifest.postData, "post-data", .opaque),
        ] + (manifest.ddlIndex.map { [($0, "table of contents", .opaque)] } ?? []) + (manifest.statistics.map { [($0, "statistics", .opaque)] } ?? []) + (manifest.globals.map { [($0, "globals", .opaque)] } ?? [])
            + (manifest.largeObjects ?? []).map { ($0, "large objects", .largeObjects) }
        var failures: [VerifyReport.Failure] = []
        var packedRows: [String: Int64] = [:]
        for pack in manifest.packs ?? [] {
            work.append((pack.object, "\(pack.slices.count) small tables", .pack(pack)))
            for slice in pack.slices { packedRows[slice.qualifiedKey, default: 0] += slice.rows }
        }
        for table in manifest.tables {
            let name = table.qualifiedKey
            work += table.objects.map { ($0, name, .copyRows) }
            let sum = table.objects.reduce(packedRows[name] ?? 0) { $0 + $1.rows }
            if sum != table.rows {
                failures.append(.init(object: "manifest", content: name,
                                      reason: "table row count \(table.rows) differs from its objects' total \(sum)"))
            }
        }
        let progress = ProgressReporter(label: "verify \(backupId)", totalBytes: work.reduce(0) { $0 + $1.record.size },
                                        totalObjects: work.count)
        if showProgress { progress.start(console: console) }
        let found = Locked((failures: failures, rows: Int64(0), plain: Int64(0)))
        let queue = WorkQueue(work)
        try queue.run(workers: jobs, setUp: { _ in () }) { _, item in
            do {
                let outcome: BackupObjects.Outcome
                let isCopyData: Bool
                switch item.kind {
                case .largeObjects:
                    (outcome, isCopyData) = (try objects.readLargeObjects(item.record) { _, _, _ in }, false)
                case .pack(let pack):
                    (outcome, isCopyData) = (try objects.readPack(pack) { _ in nil }, true)
                case .copyRows, .opaque:
                    isCopyData = item.kind == .copyRows
                    outcome = try objects.read(item.record, isCopyData: isCopyData, destination: DiscardingSink())
                }
                found.withLock { $0.rows += isCopyData ? outcome.rows : 0; $0.plain += outcome.plainBytes }
                progress.add(bytes: outcome.plainBytes, rows: isCopyData ? outcome.rows : 0)
            } catch let error as DRKitError where error.code == .integrity {
                found.withLock { $0.failures.append(.init(object: item.record.name, content: item.content, reason: error.message)) }
            }
            progress.objectDone(estimate: item.record.size)
        }
        progress.stop(console: console)
        let listed = Set(manifest.allObjects.map { "\(backupId)/\($0.name)" } + ["\(backupId)/\(ManifestFile.objectName)"])
        // Key envelopes are the backup's too (format 2), authenticated by their keys rather than listed.
        let envelopes = "\(backupId)/\(KeyEnvelopes.folder)/"
        let unlisted = try repository.objects(of: backupId).map(\.key).filter { !listed.contains($0) && !$0.hasPrefix(envelopes) }
        let result = found.current
        return VerifyReport(backupId: backupId, passed: result.failures.isEmpty, objectsChecked: work.count,
                            rowsChecked: result.rows, storedBytes: work.reduce(0) { $0 + $1.record.size },
                            plainBytes: result.plain, durationSeconds: Date().timeIntervalSince(start),
                            failures: result.failures.sorted { $0.object < $1.object }, unlistedObjects: unlisted)
    }
}

extension VerifyEngine {
    /// What an object holds, and so what is counted while it is read back.
    enum ContentKind: Sendable, Equatable { case opaque, copyRows, largeObjects, pack(PackRecord) }
}

final class DiscardingSink: ByteSink {
    func write(_ bytes: UnsafeRawBufferPointer) throws {}
    func finish() throws {}
}
