import Common
import Foundation

/// The manifest file, `<backup-id>/manifest.json`. Writing it is the commit point of a backup.
public struct ManifestFile: Codable, Sendable {
    public static let formatName = "drkit-backup"
    /// 2 adds `objects`, the plaintext object index. 3 is written only for backups holding large
    /// objects, so that a drkit that does not know them refuses the backup instead of restoring it
    /// without them. 4 likewise, only for backups with packed small tables (`packs`), which an older
    /// drkit would restore empty. Version 1 to 3 files keep reading.
    public static let currentVersion = 4
    public static let objectName = "manifest.json"

    public var format: String
    public var formatVersion: Int
    public var summary: BackupSummary
    /// Every stored object with its size and SHA-256 (format 2), so that `repo copy` can check what it
    /// moves without the key. Like the summary it is plaintext: `open` refuses a file whose index
    /// disagrees with the (authenticated) manifest.
    public var objects: [StoredObject]?
    /// Format 1 only: the key envelope (format 2 keeps envelopes as objects of their own).
    public var encryption: KeyEnvelope?
    /// The manifest, sealed with the data key (base64) when encrypted...
    public var sealedManifest: String?
    /// ...or in the clear when the backup was made with `--no-encrypt`.
    public var manifest: BackupManifest?

    /// A format-2 manifest file. Its key envelope is not inside: the backup stores it as an object of
    /// its own (`keys/<fingerprint>.json`), so that rotating keys never edits the manifest.
    public static func make(_ manifest: BackupManifest, summary: BackupSummary, dataKey: [UInt8]?) throws -> ManifestFile {
        var file = ManifestFile(format: formatName, formatVersion: formatVersion(of: manifest), summary: summary,
                                objects: manifest.allObjects.map(StoredObject.init), encryption: nil, sealedManifest: nil, manifest: nil)
        if let dataKey {
            let plain = try JSONCoding.encoder.encode(manifest)
            let sealed = try StreamingAEAD.seal([UInt8](plain), dataKey: dataKey, objectName: "\(manifest.backupId)/\(objectName)")
            file.sealedManifest = Data(sealed).base64EncodedString()
        } else {
            file.manifest = manifest
        }
        return file
    }

    /// The oldest format that holds everything the backup uses.
    static func formatVersion(of manifest: BackupManifest) -> Int {
        manifest.packs != nil ? 4 : manifest.largeObjects != nil ? 3 : 2
    }

    public static func decode(_ bytes: [UInt8]) throws -> ManifestFile {
        let file: ManifestFile
        do {
            file = try JSONCoding.decoder.decode(ManifestFile.self, from: Data(bytes))
        } catch {
            throw ArchiveError(.malformed, "manifest is not valid JSON of the drkit-backup format")
        }
        guard file.format == formatName else { throw ArchiveError(.malformed, "not a drkit manifest (format \(file.format))") }
        guard file.formatVersion <= currentVersion else {
            throw ArchiveError(.malformed, "manifest format version \(file.formatVersion) is newer than this drkit understands (\(currentVersion))")
        }
        guard file.formatVersion < 2 || file.objects != nil else {
            throw ArchiveError(.malformed, "manifest of \(file.summary.backupId) is format \(file.formatVersion) but has no object index")
        }
        return file
    }

    public func encoded() throws -> [UInt8] { [UInt8](try JSONCoding.encoder.encode(self)) }

    /// The full manifest; `dataKey` is needed when the backup is encrypted. The plaintext summary is
    /// checked against it: any field that differs means the summary was edited, and is refused.
    public func open(dataKey: [UInt8]?) throws -> BackupManifest {
        let manifest = try openBody(dataKey: dataKey)
        try checkSummary(against: manifest)
        return manifest
    }

    /// Every summary field `list`, `restore latest`, drills and retention act on, compared with the
    /// manifest (authenticated by the data key when the backup is encrypted).
    func checkSummary(against manifest: BackupManifest) throws {
        let objects = manifest.allObjects
        let fields: [(String, Bool)] = [
            ("backupId", summary.backupId == manifest.backupId),
            ("database", summary.database == manifest.source.database),
            ("serverVersion", summary.serverVersion == manifest.source.serverVersion),
            ("toolVersion", summary.toolVersion == manifest.toolVersion),
            ("snapshotTime", summary.snapshotTime == manifest.snapshotTime),
            ("startedAt", summary.startedAt == manifest.startedAt),
            ("finishedAt", summary.finishedAt == manifest.finishedAt),
            ("tableCount", summary.tableCount == manifest.tables.count),
            ("objectCount", summary.objectCount == objects.count),
            ("storedBytes", summary.storedBytes == objects.reduce(0) { $0 + $1.size }),
            ("encrypted", summary.encrypted == isEncrypted),
            // Format 1: the envelope in this file; format 2: the key the backup was made with, inside the manifest.
            ("keyFingerprint", summary.keyFingerprint == (encryption?.kek.fingerprint ?? manifest.keyFingerprint)),
            ("objects", self.objects == nil || self.objects! == objects.map(StoredObject.init)),
            ("run", summary.run == manifest.run),
            ("globals", (summary.globals ?? false) == (manifest.globals != nil)),
            ("partial", (summary.partial ?? false) == (manifest.selection != nil)),
            ("streamPosition", summary.streamPosition == manifest.streamPosition),
            ("effectiveTime", summary.effectiveTime == manifest.standby?.lastReplayedCommit),
        ]
        let differing = fields.filter { !$0.1 }.map(\.0)
        guard differing.isEmpty else {
            throw ArchiveError(.authenticationFailed, "the plaintext summary of backup \(summary.backupId) disagrees with its \(isEncrypted ? "authenticated " : "")manifest (\(differing.joined(separator: ", "))): it was edited in the repository; refusing it")
        }
    }

    /// The stored objects with their sizes and hashes: from the index (format 2) or the clear manifest,
    /// without a key; a format-1 encrypted backup needs `dataKey` to open its sealed manifest.
    public func storedObjects(dataKey: [UInt8]?) throws -> [StoredObject] {
        if let objects { return objects }
        return try open(dataKey: dataKey).allObjects.map(StoredObject.init)
    }

    public var isEncrypted: Bool { sealedManifest != nil || encryption != nil }

    /// Whether the object list can be read without a key.
    public var objectsReadableWithoutKey: Bool { objects != nil || manifest != nil }

    private func openBody(dataKey: [UInt8]?) throws -> BackupManifest {
        if let manifest { return manifest }
        guard let sealedManifest, let sealed = Data(base64Encoded: sealedManifest) else {
            throw ArchiveError(.malformed, "manifest of \(summary.backupId) has no body")
        }
        guard let dataKey else { throw ArchiveError(.wrongKey, "backup \(summary.backupId) is encrypted: give --key-file, DRKIT_KEY or --passphrase-env") }
        let plain = try StreamingAEAD.open([UInt8](sealed), dataKey: dataKey, objectName: "\(summary.backupId)/\(ManifestFile.objectName)")
        let manifest = try JSONCoding.decoder.decode(BackupManifest.self, from: Data(plain))
        guard manifest.backupId == summary.backupId else {
            throw ArchiveError(.authenticationFailed, "manifest body belongs to backup \(manifest.backupId), not \(summary.backupId)")
        }
        return manifest
    }
}

public enum JSONCoding {
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Timestamps.iso8601(date))
        }
        return e
    }

    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = Timestamps.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad timestamp \(text)"))
            }
            return date
        }
        return d
    }
}
