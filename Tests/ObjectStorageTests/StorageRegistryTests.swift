import XCTest
import Foundation
@testable import ObjectStorage

final class StorageRegistryTests: XCTestCase {
    func testLocationsParseByScheme() throws {
        XCTAssertEqual(try StorageLocation.parse("backups/nightly", currentDirectory: "/srv"), StorageLocation(scheme: "file", path: "/srv/backups/nightly"))
        XCTAssertEqual(try StorageLocation.parse("/srv/../srv/b"), StorageLocation(scheme: "file", path: "/srv/b"))
        XCTAssertEqual(try StorageLocation.parse("file:///srv/b"), StorageLocation(scheme: "file", path: "/srv/b"))
        XCTAssertEqual(try StorageLocation.parse("S3://bucket/a/b?region=eu-west-1"),
                       StorageLocation(scheme: "s3", path: "bucket/a/b", parameters: ["region": "eu-west-1"]))
        XCTAssertEqual(try StorageLocation.parse("s3://bucket?endpoint=http%3A%2F%2F127.0.0.1%3A9000").parameters["endpoint"], "http://127.0.0.1:9000")
        XCTAssertEqual(try StorageLocation.parse("s3://b/p?region=x&profile=dr").description, "s3://b/p?profile=dr&region=x")
    }

    func testUnknownSchemesParametersAndSecretsAreRefused() throws {
        let cases: [(String, String)] = [
            ("gs://bucket", "scheme \"gs://\" is not supported"),
            ("file://relative/path", "need an absolute path"),
            ("file:///srv/b?region=x", "take no parameter \"region\""),
            ("s3://b?password=hunter2", "looks like a credential"),
            ("s3://b?AWS_SECRET_ACCESS_KEY=x", "looks like a credential"),
            ("", "empty repository location"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try StorageRegistry.open(text, create: false), text) { error in
                XCTAssertEqual((error as? StorageError)?.kind, .invalidLocation, text)
                XCTAssertTrue("\(error)".contains(message), "\(text): \(error)")
                XCTAssertFalse("\(error)".contains("hunter2"))
            }
        }
    }

    func testEveryRegisteredSchemeOpens() throws {
        XCTAssertEqual(Set(StorageRegistry.backends.keys), ["file", "s3"])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("registry-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        XCTAssertTrue(try StorageRegistry.open(directory.path, create: true) is FileStore)
        XCTAssertTrue(try StorageRegistry.open("file://" + directory.path, create: false) is FileStore)
        var settings = StorageSettings()
        settings.environment = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "HOME": "/nonexistent"]
        settings.partSizeMiB = 16
        let store = try XCTUnwrap(try StorageRegistry.open("s3://b/p?endpoint=http://127.0.0.1:1", create: false, settings: settings) as? S3Store)
        XCTAssertEqual(store.configuration.partSize, 16 << 20)
        XCTAssertEqual(store.location, "s3://b/p")
    }
}
