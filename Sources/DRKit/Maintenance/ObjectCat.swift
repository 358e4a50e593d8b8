import Archive
import ObjectStorage
import Foundation
import Common

/// `drkit cat`: one object, authenticated and decrypted, as the plain gzip stream it holds.
public enum ObjectCat {
    public static func run(repository: Repository, reference: String, object: String, keys: KeyOptions,
                           output: ByteSink) throws {
        let file = try repository.resolve(reference, keys: keys)
        let backupId = file.summary.backupId
        let key = "\(backupId)/\(object)"
        let sink: ByteSink
        if file.isEncrypted {
            guard let dataKey = try keys.dataKey(for: file, in: repository) else { throw DRKitError(.usage, "backup \(backupId) needs a key") }
            sink = StreamOpener(dataKey: dataKey, objectName: key, next: output)
        } else {
            sink = output
        }
        do {
            try repository.store.read(key: key, into: sink)
            try sink.finish()
        } catch let e as StorageError where e.kind == .notFound {
            throw DRKitError(.integrity, "object \(object) not found in backup \(backupId)")
        } catch {
            throw DRKitError.wrap(error, "object \(object)")
        }
    }
}
