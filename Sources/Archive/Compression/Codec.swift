import Common

/// How a backup's objects are compressed: written by `--compress`, recorded in the manifest
/// (`compression.algorithm` and `level`), and followed by every reader. Every codec streams.
///
/// - `gzip[:1-9]`: drkit-framed gzip members (see `GzipFraming`); `gunzip` reads them.
/// - `zstd[:1-19]`: one zstd frame with a content checksum; `zstd -d` reads it.
/// - `none`: the plain SQL or COPY text.
public struct Codec: Equatable, Sendable, CustomStringConvertible {
    public enum Algorithm: String, CaseIterable, Sendable {
        case gzip, zstd, none
    }

    public var algorithm: Algorithm
    public var level: Int

    /// Chosen by scripts/bench.sh's measurement (README "Compression"): zstd level 1 backed up in
    /// about 0.56x the time of gzip level 6 and restored faster with less client CPU, for 1.5% more bytes.
    public static let `default` = Codec(algorithm: .zstd, level: defaultLevel(.zstd))

    public init(algorithm: Algorithm, level: Int) {
        self.algorithm = algorithm
        self.level = level
    }

    public static func defaultLevel(_ algorithm: Algorithm) -> Int {
        switch algorithm {
        case .gzip: return 6
        case .zstd: return 1
        case .none: return 0
        }
    }

    public static func levels(_ algorithm: Algorithm) -> ClosedRange<Int> {
        switch algorithm {
        case .gzip: return 1...9
        case .zstd: return ZstdCompressor.levels
        case .none: return 0...0
        }
    }

    /// `gzip`, `gzip:6`, `zstd:3`, `none`. The message of a thrown error is meant for `--compress`.
    public static func parse(_ text: String) throws -> Codec {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let algorithm = Algorithm(rawValue: parts[0].lowercased()) else {
            throw ArchiveError(.malformed, "unknown compression \"\(parts[0])\": use gzip[:1-9], zstd[:1-19] or none")
        }
        guard parts.count == 2 else { return Codec(algorithm: algorithm, level: defaultLevel(algorithm)) }
        guard algorithm != .none else { throw ArchiveError(.malformed, "compression none takes no level") }
        let range = levels(algorithm)
        guard let level = Int(parts[1]), range.contains(level) else {
            throw ArchiveError(.malformed, "\(algorithm.rawValue) level must be \(range.lowerBound)-\(range.upperBound), got \"\(parts[1])\"")
        }
        return Codec(algorithm: algorithm, level: level)
    }

    /// The codec a manifest names. Unknown names are refused rather than guessed.
    public static func recorded(algorithm: String, level: Int) throws -> Codec {
        guard let known = Algorithm(rawValue: algorithm) else {
            throw ArchiveError(.malformed, "the backup is compressed with \"\(algorithm)\", which this drkit cannot read (a newer drkit wrote it)")
        }
        return Codec(algorithm: known, level: level)
    }

    public var description: String { algorithm == .none ? "none" : "\(algorithm.rawValue):\(level)" }

    /// What object names end in before any `.enc`: `.gz`, `.zst`, or nothing.
    public var fileExtension: String {
        switch algorithm {
        case .gzip: return ".gz"
        case .zstd: return ".zst"
        case .none: return ""
        }
    }

    /// The tool that turns `drkit cat` output back into plain text.
    public var manualDecompressor: String {
        switch algorithm {
        case .gzip: return "gunzip -c"
        case .zstd: return "zstd -dc"
        case .none: return "cat"
        }
    }

    public func compressor(next: ByteSink) throws -> ByteSink {
        switch algorithm {
        case .gzip: return try GzipCompressor(level: level, next: next)
        case .zstd: return try ZstdCompressor(level: level, next: next)
        case .none: return PassThroughSink(next: next)
        }
    }

    public func decompressor(next: ByteSink) throws -> ByteSink {
        switch algorithm {
        case .gzip: return try GzipDecompressor(next: next)
        case .zstd: return try ZstdDecompressor(next: next)
        case .none: return PassThroughSink(next: next)
        }
    }
}

/// The `none` codec: bytes go through unchanged.
final class PassThroughSink: ByteSink {
    private let next: ByteSink
    init(next: ByteSink) { self.next = next }
    func write(_ bytes: UnsafeRawBufferPointer) throws { try next.write(bytes) }
    func finish() throws { try next.finish() }
}
