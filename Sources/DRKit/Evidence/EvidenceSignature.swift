import Foundation
import Common
import Archive

/// Signed evidence folders. Signing writes, beside the evidence:
/// - `evidence-chain.json`: the audit trail's location and head (record count and last hash) and the
///   backup's id and manifest digest, so the signature covers what the evidence points at;
/// - `<file>.minisig` for every file of the folder (`minisign -Vm evidence.json -p drkit.pub` checks one);
/// - `SHA256SUMS` of those files and `SHA256SUMS.minisig`: what makes an added or removed file visible.
/// Verifying needs the public key from elsewhere: never from the folder it checks.
public enum EvidenceSignature {
    public static let sumsName = "SHA256SUMS"
    public static let chainName = "evidence-chain.json"
    static let suffix = ".minisig"

    public struct Chain: Codable, Sendable {
        public var tool = "drkit"
        public var toolVersion = DRKitVersion.current
        public var kind: String
        public var runId: String
        public var signedAt: Date
        public var auditTrail: String?
        public var auditRecords: Int?
        public var auditHeadHash: String?
        public var backupId: String?
        public var backupManifestSHA256: String?

        public init(kind: String, runId: String, audit: AuditStore?, backupId: String?, manifestBytes: [UInt8]?) {
            self.kind = kind
            self.runId = runId
            signedAt = Date()
            auditTrail = audit?.location
            if let head = try? audit?.head() { (auditRecords, auditHeadHash) = (head.count, head.hash) }
            self.backupId = backupId
            backupManifestSHA256 = manifestBytes.map { Hex.encode(SHA256.hash($0)) }
        }
    }

    /// `--signing-key FILE`, else `DRKIT_SIGNING_KEY` (a path, or the key file's text itself).
    public static func loadKey(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Minisign.SecretKey? {
        let text: String
        if let path {
            text = try readKeyFile(path)
        } else if let value = environment["DRKIT_SIGNING_KEY"], !value.isEmpty {
            text = value.hasPrefix(Minisign.untrusted) ? value : try readKeyFile(value)
        } else {
            return nil
        }
        return try Minisign.SecretKey.parse(text)
    }

    private static func readKeyFile(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DRKitError(.usage, "cannot read the signing key \(path)")
        }
        return text
    }

    /// Signs every file of `directory` (not its subfolders); earlier signatures there are replaced.
    public static func sign(directory: String, chain: Chain, key: Minisign.SecretKey) throws {
        let folder = URL(fileURLWithPath: directory)
        do {
            try JSONCoding.encoder.encode(chain).write(to: folder.appendingPathComponent(chainName), options: .atomic)
            var sums = ""
            for name in try signedFiles(in: directory) {
                let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
                let comment = "drkit \(chain.kind) \(chain.runId) file:\(name) sha256:\(Hex.encode(SHA256.hash(bytes))) signed:\(Timestamps.iso8601(chain.signedAt))"
                try key.sign(bytes, trustedComment: comment).write(to: folder.appendingPathComponent(name + suffix), atomically: true, encoding: .utf8)
                sums += "\(Hex.encode(SHA256.hash(bytes)))  \(name)\n"
            }
            try sums.write(to: folder.appendingPathComponent(sumsName), atomically: true, encoding: .utf8)
            let comment = "drkit \(chain.kind) \(chain.runId) files:\(sums.split(separator: "\n").count) signed:\(Timestamps.iso8601(chain.signedAt))"
            try key.sign(Array(sums.utf8), trustedComment: comment)
                .write(to: folder.appendingPathComponent(sumsName + suffix), atomically: true, encoding: .utf8)
        } catch let error as DRKitError { throw error } catch {
            throw DRKitError(.usage, "cannot sign the evidence in \(directory): \(error.localizedDescription)")
        }
    }

    /// The files a signature covers: every regular file but signatures and the list itself, sorted.
    static func signedFiles(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory) && !isDirectory.boolValue
                && !name.hasSuffix(suffix) && name != sumsName
        }.sorted()
    }

    public struct FolderResult: Codable, Sendable {
        public var folder: String
        public var files: Int
        public var problems: [String]
        public var passed: Bool { problems.isEmpty }
    }

    /// Every evidence folder under `paths` (a folder with SHA256SUMS.minisig or evidence.json, at any
    /// depth), each checked against `key`.
    public static func verify(paths: [String], key: Minisign.PublicKey) throws -> [FolderResult] {
        var folders: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw DRKitError(.usage, "\(path) is not a folder")
            }
            if isEvidenceFolder(path) { folders.append(path) }
            guard let walker = FileManager.default.enumerator(atPath: path) else { continue }
            while let relative = walker.nextObject() as? String {
                let full = (path as NSString).appendingPathComponent(relative)
                if walker.fileAttributes?[.type] as? FileAttributeType == .typeDirectory, isEvidenceFolder(full) { folders.append(full) }
            }
        }
        guard !folders.isEmpty else { throw DRKitError(.usage, "no evidence folder under \(paths.joined(separator: ", ")) (none holds evidence.json or \(sumsName)\(suffix))") }
        return folders.sorted().map { verify(folder: $0, key: key) }
    }

    static func isEvidenceFolder(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + sumsName + suffix) || FileManager.default.fileExists(atPath: path + "/evidence.json")
    }

    static func verify(folder: String, key: Minisign.PublicKey) -> FolderResult {
        var problems: [String] = []
        func read(_ name: String) -> [UInt8]? { FileManager.default.contents(atPath: folder + "/" + name).map { [UInt8]($0) } }
        guard let sums = read(sumsName), let sumsSignature = read(sumsName + suffix) else {
            return FolderResult(folder: folder, files: 0, problems: ["not signed (no \(sumsName) and \(sumsName)\(suffix))"])
        }
        if case .invalid(let why) = Minisign.verify(signatureFile: String(decoding: sumsSignature, as: UTF8.self), message: sums, key: key) {
            return FolderResult(folder: folder, files: 0, problems: ["\(sumsName): \(why)"])
        }
        var listed = Set<String>()
        for line in String(decoding: sums, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { problems.append("\(sumsName): malformed line"); continue }
            let name = parts[1].hasPrefix(" ") ? String(parts[1].dropFirst()) : String(parts[1])
            listed.insert(name)
            guard let bytes = read(name) else { problems.append("removed: \(name)"); continue }
            if Hex.encode(SHA256.hash(bytes)) != parts[0] { problems.append("edited: \(name)"); continue }
            guard let signature = read(name + suffix) else { problems.append("removed: \(name)\(suffix)"); continue }
            if case .invalid(let why) = Minisign.verify(signatureFile: String(decoding: signature, as: UTF8.self), message: bytes, key: key) {
                problems.append("\(name)\(suffix): \(why)")
            }
        }
        let present = (try? signedFiles(in: folder)) ?? []
        for name in present where !listed.contains(name) { problems.append("added: \(name)") }
        let signatures = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(suffix) && $0 != sumsName + suffix }
        for name in signatures.sorted() where !listed.contains(String(name.dropLast(suffix.count))) { problems.append("added: \(name)") }
        return FolderResult(folder: folder, files: listed.count, problems: problems)
    }
}
