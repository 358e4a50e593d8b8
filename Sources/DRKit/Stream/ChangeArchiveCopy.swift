import Archive
import ObjectStorage
import Foundation
import Common

/// `repo copy --all` carries the change archive too: per lineage its key envelopes, every segment the
/// destination lacks (or holds with other bytes), then lineage.json, which makes the lineage listed
/// there. Segments are copied byte for byte (still sealed: no key needed) and read back.
public struct ChangeArchiveCopy: Codable, Sendable {
    public var lineage: String
    public var database: String
    public var segmentsCopied = 0
    public var segmentsAlreadyThere = 0
    public var bytesCopied: Int64 = 0

    static func run(from source: Repository, to destination: Repository) throws -> [ChangeArchiveCopy] {
        let from = StreamArchive(repository: source)
        return try from.lineages().map { lineage in
            var outcome = ChangeArchiveCopy(lineage: lineage.lineage, database: lineage.database)
            let folder = StreamArchive.folder(lineage.lineage)
            do {
                let present = Dictionary(try destination.store.list(prefix: folder + "/").map { ($0.key, $0.size) }, uniquingKeysWith: { a, _ in a })
                // Key envelopes, and the schema changes seen in the catalog (without them a restore
                // from the copy would replay across DDL it should refuse).
                for subfolder in [KeyEnvelopes.folder, StreamArchive.catalogFolder] {
                    for object in try source.store.list(prefix: folder + "/\(subfolder)/") where present[object.key] == nil {
                        try destination.putBackupObject(key: object.key, bytes: try source.store.get(key: object.key))
                    }
                }
                for segment in try from.segments(of: lineage.lineage) {
                    let bytes = try source.store.get(key: segment.key)
                    let digest = SHA256.hex(bytes)
                    if present[segment.key] == Int64(bytes.count), SHA256.hex(try destination.store.get(key: segment.key)) == digest {
                        outcome.segmentsAlreadyThere += 1
                        continue
                    }
                    try destination.putBackupObject(key: segment.key, bytes: bytes)
                    guard SHA256.hex(try destination.store.get(key: segment.key)) == digest else {
                        throw DRKitError(.integrity, "change segment \(segment.key) reads back different at \(destination.store.location)")
                    }
                    outcome.segmentsCopied += 1
                    outcome.bytesCopied += Int64(bytes.count)
                }
                let lineageKey = "\(folder)/\(StreamArchive.lineageObject)"
                if present[lineageKey] == nil {
                    try destination.putBackupObject(key: lineageKey, bytes: try source.store.get(key: lineageKey))
                }
            } catch { throw DRKitError.wrap(error, "copying the change archive of \(lineage.database) (lineage \(lineage.lineage))") }
            return outcome
        }
    }
}
