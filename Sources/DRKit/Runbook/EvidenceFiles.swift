import Archive
import Foundation
import Common

public enum EvidenceFiles {
    public static func write(json: some Encodable, markdown: String, markdownName: String, to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try JSONCoding.encoder.encode(json).write(to: URL(fileURLWithPath: directory + "/evidence.json"), options: .atomic)
            try markdown.write(toFile: directory + "/" + markdownName, atomically: true, encoding: .utf8)
        } catch {
            throw DRKitError(.usage, "cannot write evidence to \(directory): \(error.localizedDescription)")
        }
    }
}
