import XCTest
import Foundation
@testable import Archive
import Common

final class GzipTests: XCTestCase {
    func testRoundTripAndConcatenatedMembers() throws {
        let a = Array(String(repeating: "row\tvalue\n", count: 50_000).utf8)
        let b = Array("tail\n".utf8)
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress(a)), a)
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress(a) + Gzip.compress(b, level: 1)), a + b)
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress([])), [])
    }

    func testTruncatedAndCorruptStreamsFail() throws {
        let gz = try Gzip.compress(Array(String(repeating: "abc", count: 10_000).utf8))
        XCTAssertThrowsError(try Gzip.decompress(Array(gz.prefix(gz.count - 4)))) {
            XCTAssertEqual(($0 as? ArchiveError)?.kind, .truncated)
        }
        var corrupt = gz
        corrupt[gz.count / 2] ^= 0xFF
        XCTAssertThrowsError(try Gzip.decompress(corrupt))
    }

    func testOutputIsReadableByGunzip() throws {
        let plain = Array("COPY text\twith tabs\n".utf8)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("drkit-\(UUID().uuidString).gz")
        try Data(try Gzip.compress(plain)).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -dc '\(file.path)'"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual([UInt8](out), plain)
    }
}
