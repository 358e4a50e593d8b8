import XCTest
import Foundation
@testable import Archive
import Common

final class CodecTests: XCTestCase {
    private func roundTrip(_ codec: Codec, _ input: [UInt8], chunk: Int = 7_777) throws -> (compressed: [UInt8], plain: [UInt8]) {
        let stored = BufferSink()
        let compressor = try codec.compressor(next: stored)
        for start in stride(from: 0, to: input.count, by: chunk) { try compressor.write(Array(input[start..<min(start + chunk, input.count)])) }
        try compressor.finish()
        let plain = BufferSink()
        let decompressor = try codec.decompressor(next: plain)
        for start in stride(from: 0, to: stored.bytes.count, by: 4_099) {
            try decompressor.write(Array(stored.bytes[start..<min(start + 4_099, stored.bytes.count)]))
        }
        try decompressor.finish()
        XCTAssertTrue(plain.finished)
        return (stored.bytes, plain.bytes)
    }

    private let copyText: [UInt8] = Array((0..<60_000).map { "\($0)\tname \($0 % 97)\t\($0 * 31 % 1000).25\n" }.joined().utf8)

    func testEveryCodecRoundTripsInAnyChunking() throws {
        for text in ["zstd:1", "zstd:3", "zstd:19", "gzip:1", "gzip:6", "none"] {
            let codec = try Codec.parse(text)
            let (compressed, plain) = try roundTrip(codec, copyText)
            XCTAssertEqual(plain, copyText, text)
            if codec.algorithm != .none { XCTAssertLessThan(compressed.count, copyText.count / 3, text) }
            XCTAssertEqual(try roundTrip(codec, []).plain, [], "empty input, \(text)")
        }
    }

    func testZstdOutputIsAStandardFrameThatTheCLIReads() throws {
        let (compressed, _) = try roundTrip(try Codec.parse("zstd:3"), copyText)
        XCTAssertEqual(Array(compressed.prefix(4)), [0x28, 0xB5, 0x2F, 0xFD], "zstd frame magic")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("codec-\(UUID().uuidString).zst")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(compressed).write(to: file)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["zstd", "-dc", file.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual([UInt8](output), copyText)
    }

    func testTruncatedOrAlteredZstdIsRefused() throws {
        let (compressed, _) = try roundTrip(try Codec.parse("zstd:3"), copyText)
        let truncated = Array(compressed.dropLast(9))
        let plain = BufferSink()
        let reader = try ZstdDecompressor(next: plain)
        XCTAssertThrowsError(try { try reader.write(truncated); try reader.finish() }()) { error in
            XCTAssertEqual((error as? ArchiveError)?.kind, .truncated, "\(error)")
        }
        XCTAssertFalse(plain.finished)
        var flipped = compressed
        flipped[compressed.count / 2] ^= 0x40
        let other = try ZstdDecompressor(next: BufferSink())
        XCTAssertThrowsError(try { try other.write(flipped); try other.finish() }())
        XCTAssertThrowsError(try { let r = try ZstdDecompressor(next: BufferSink()); try r.finish() }(), "empty stream")
    }

    func testParseNamesLevelsAndRefusals() throws {
        XCTAssertEqual(try Codec.parse("zstd"), Codec(algorithm: .zstd, level: 1))
        XCTAssertEqual(try Codec.parse("GZIP"), Codec(algorithm: .gzip, level: 6))
        XCTAssertEqual(try Codec.parse("gzip:9"), Codec(algorithm: .gzip, level: 9))
        XCTAssertEqual(try Codec.parse("none"), Codec(algorithm: .none, level: 0))
        XCTAssertEqual(Codec.default.description, "zstd:1")
        XCTAssertEqual(try Codec.parse("zstd:12").fileExtension, ".zst")
        XCTAssertEqual(try Codec.parse("gzip").fileExtension, ".gz")
        XCTAssertEqual(try Codec.parse("none").fileExtension, "")
        for bad in ["", "lz4", "gzip:0", "gzip:10", "zstd:0", "zstd:20", "zstd:", "none:0", "gzip:6:1"] {
            XCTAssertThrowsError(try Codec.parse(bad), bad)
        }
        XCTAssertThrowsError(try Codec.recorded(algorithm: "brotli", level: 1)) { error in
            XCTAssertTrue("\(error)".contains("newer drkit"), "\(error)")
        }
    }
}
