import XCTest
import Foundation
@testable import Archive
import Common

final class GzipFramingTests: XCTestCase {
    func testForeignGzipIsReadThroughZlib() throws {
        let plain = Array(String(repeating: "line from another tool\n", count: 20_000).utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -c"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(plain))
        try input.fileHandleForWriting.close()
        let gz = [UInt8](output.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        XCTAssertEqual(try Gzip.decompress(gz), plain)
        // drkit members followed by a foreign member still read as one stream.
        XCTAssertEqual(try Gzip.decompress(try Gzip.compress(plain) + gz), plain + plain)
    }

    func testMultiMemberFramingAndLengthField() throws {
        let plain = SecureRandom.bytes(3 * GzipCompressor.defaultBlockSize + 123)
        let gz = try Gzip.compress(plain, level: 1)
        XCTAssertEqual(try Gzip.decompress(gz), plain)
        let firstLength = gz.withUnsafeBytes { GzipFraming.memberLength($0) }
        XCTAssertNotNil(firstLength)
        XCTAssertLessThan(firstLength!, gz.count, "several members")
        var wrongCRC = gz
        wrongCRC[firstLength! - 8] ^= 1
        XCTAssertThrowsError(try Gzip.decompress(wrongCRC))
    }

    func testNewlineCountingMatchesAByteLoop() {
        for size in [0, 1, 7, 8, 9, 63, 64, 1000] {
            var bytes = SecureRandom.bytes(size)
            for i in stride(from: 0, to: size, by: 3) { bytes[i] = 0x0A }
            let expected = bytes.filter { $0 == 0x0A }.count
            XCTAssertEqual(bytes.withUnsafeBytes { LineCountingSink.countNewlines($0) }, expected, "size \(size)")
        }
        let awkward: [UInt8] = [0x0A, 0x8A, 0x0B, 0x09, 0xFF, 0x00, 0x0A, 0x0A, 0x8A, 0x0A]
        XCTAssertEqual(awkward.withUnsafeBytes { LineCountingSink.countNewlines($0) }, 4)
    }
}
