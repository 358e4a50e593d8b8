// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "drkit",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "drkit", targets: ["drkit"]),
        .library(name: "DRKit", targets: ["DRKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries, found through pkg-config; no Swift in these targets.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Compression only: whole-block gzip members, ~2.5x zlib's speed at a smaller size (docs/ARCHITECTURE.md).
        .systemLibrary(name: "CLibDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // Second codec: zstd frames, streamed (Debian libzstd-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Typed wrappers for C APIs Swift cannot call directly (macros, variadics).
        .target(name: "CShims", dependencies: ["CZlib", "CCurl"]),
        // Version (the VERSION file, compiled in) and the commit and date scripts/package.sh stamps.
        .target(name: "CBuildInfo"),

        // Bytes, hashes, ciphers, random, locks, timestamps: the bottom layer, and OpenSSL's only owner.
        .target(name: "Common", dependencies: ["COpenSSL"]),
        .target(name: "PostgresClient", dependencies: ["CLibPQ"]),
        .target(name: "Archive", dependencies: ["Common", "CZlib", "CLibDeflate", "CZstd", "CShims"]),
        .target(name: "ObjectStorage", dependencies: ["Common", "CCurl", "CShims"]),
        .target(name: "DRKit", dependencies: ["Common", "CBuildInfo", "PostgresClient", "Archive", "ObjectStorage", .product(name: "Yams", package: "Yams")]),
        .executableTarget(name: "drkit", dependencies: [
            "DRKit", "Common", "Archive", "ObjectStorage", "PostgresClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TestSupport", dependencies: ["Common", "PostgresClient"]),

        // Value tests: no server, no service; `swift test --filter '^(Common|PostgresClient|Archive|ObjectStorage|DRKit)Tests\.'` runs them alone.
        .testTarget(name: "CommonTests", dependencies: ["Common"]),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "Common"], resources: [.copy("Vectors")]),
        .testTarget(name: "ObjectStorageTests", dependencies: ["ObjectStorage", "Common", "TestSupport"], resources: [.copy("Vectors")]),
        .testTarget(name: "DRKitTests", dependencies: ["DRKit", "Common", "TestSupport", "PostgresClient", "Archive", "ObjectStorage"]),
        // Integration tests: against the PostgreSQL, S3 (moto, Ceph RGW) and monitoring servers scripts/test.sh starts;
        // a test whose service is missing fails, never skips.
        .testTarget(name: "ObjectStorageIntegrationTests", dependencies: ["ObjectStorage", "Common", "TestSupport"]),
        .testTarget(name: "DRKitIntegrationTests", dependencies: ["DRKit", "Common", "TestSupport", "PostgresClient", "Archive", "ObjectStorage"],
                    exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
