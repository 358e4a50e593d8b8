import XCTest
import Foundation
import Common
import TestSupport
@testable import ObjectStorage

final class S3ConfigurationTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("drkit-aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try """
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = secretdefault

            [backup]
            aws_access_key_id=AKIDBACKUP
            aws_secret_access_key=secretbackup
            aws_session_token = tokenbackup
            """.write(to: directory.appendingPathComponent("credentials"), atomically: true, encoding: .utf8)
        try """
            [default]
            region = eu-west-1

            [profile backup]
            region = ap-southeast-2
            endpoint_url = https://minio.internal:9000

            [profile onlyconfig]
            aws_access_key_id = AKIDCONFIG
            aws_secret_access_key = secretconfig

            [profile ceph]
            services = ceph-services
            aws_access_key_id = AKIDCEPH
            aws_secret_access_key = secretceph

            [services ceph-services]
            dynamodb =
              endpoint_url = http://wrong.example:1
            s3 =
              endpoint_url = http://rgw.example:7480
              addressing_style = path
            """.write(to: directory.appendingPathComponent("config"), atomically: true, encoding: .utf8)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    var files: [String: String] {
        ["AWS_SHARED_CREDENTIALS_FILE": directory.appendingPathComponent("credentials").path,
         "AWS_CONFIG_FILE": directory.appendingPathComponent("config").path, "HOME": "/nonexistent"]
    }

    func testEnvironmentCredentialsWinAndSessionToken() throws {
        var env = files
        env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
        env["AWS_SECRET_ACCESS_KEY"] = "secretenv"
        env["AWS_SESSION_TOKEN"] = "tok"
        env["AWS_REGION"] = "us-west-2"
        let config = try S3Configuration.resolve(url: "s3://bucket/some/prefix/", environment: env)
        XCTAssertEqual(config.credentials, AWSCredentials(accessKeyId: "AKIDENV", secretAccessKey: "secretenv", sessionToken: "tok", source: "environment"))
        XCTAssertEqual(config.bucket, "bucket")
        XCTAssertEqual(config.prefix, "some/prefix")
        XCTAssertEqual(config.region, "us-west-2")
        XCTAssertEqual(config.endpoint.absoluteString, "https://s3.us-west-2.amazonaws.com")
        XCTAssertFalse(config.pathStyle, "virtual-hosted addressing on AWS")
    }

    func testProfilesFromSharedFiles() throws {
        let defaults = try S3Configuration.resolve(url: "s3://b", environment: files)
        XCTAssertEqual(defaults.credentials.accessKeyId, "AKIDDEFAULT")
        XCTAssertEqual(defaults.region, "eu-west-1")

        var env = files
        env["AWS_PROFILE"] = "backup"
        let backup = try S3Configuration.resolve(url: "s3://b/p", environment: env)
        XCTAssertEqual(backup.credentials.accessKeyId, "AKIDBACKUP")
        XCTAssertEqual(backup.credentials.sessionToken, "tokenbackup")
        XCTAssertEqual(backup.region, "ap-southeast-2")
        XCTAssertEqual(backup.endpoint.absoluteString, "https://minio.internal:9000")

        env["AWS_PROFILE"] = "onlyconfig"
        XCTAssertEqual(try S3Configuration.resolve(url: "s3://b", environment: env).credentials.accessKeyId, "AKIDCONFIG")

        env["AWS_PROFILE"] = "ceph"
        let ceph = try S3Configuration.resolve(url: "s3://b", environment: env)
        XCTAssertEqual(ceph.endpoint.absoluteString, "http://rgw.example:7480", "the s3 endpoint of the profile's services section")
        XCTAssertEqual(try S3Configuration.resolve(url: "s3://b?profile=ceph", environment: files).credentials.accessKeyId, "AKIDCEPH")

        env["AWS_PROFILE"] = "missing"
        XCTAssertThrowsError(try S3Configuration.resolve(url: "s3://b", environment: env)) {
            XCTAssertEqual(($0 as? StorageError)?.kind, .invalidLocation)
        }
    }

    /// Two repositories in one process, each with its own identity, endpoint and region from its URL.
    func testURLParametersAndNamedProfilesPerRepository() throws {
        var env = files
        env["AWS_ACCESS_KEY_ID"] = "AKIDENV"
        env["AWS_SECRET_ACCESS_KEY"] = "secretenv"
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000"
        let primary = try S3Configuration.resolve(url: "s3://prod/db", environment: env)
        let secondary = try S3Configuration.resolve(url: "s3://dr-copy/db?profile=backup", environment: env)
        XCTAssertEqual(primary.credentials.accessKeyId, "AKIDENV")
        XCTAssertEqual(secondary.credentials.accessKeyId, "AKIDBACKUP", "a profile on the URL beats the environment's keys")
        XCTAssertEqual(secondary.endpoint.absoluteString, "https://minio.internal:9000", "and its endpoint_url beats AWS_ENDPOINT_URL")
        XCTAssertEqual(secondary.region, "ap-southeast-2")
        XCTAssertEqual(primary.endpoint.absoluteString, "http://127.0.0.1:9000")

        let explicit = try S3Configuration.resolve(url: "s3://b/p?profile=backup&endpoint=http%3A%2F%2Fminio.test%3A9001&region=r-9&addressing=virtual",
                                                   settings: .init(endpoint: "http://flag:1", region: "flag-1"), environment: env)
        XCTAssertEqual(explicit.endpoint.absoluteString, "http://minio.test:9001", "URL parameters win over profile and flags")
        XCTAssertEqual(explicit.region, "r-9")
        XCTAssertFalse(explicit.pathStyle)
        XCTAssertEqual(explicit.location, "s3://b/p")
        XCTAssertTrue(try S3Configuration.resolve(url: "s3://b?addressing=path&endpoint=https://s3.example.com", environment: env).pathStyle)

        for (url, message) in [("s3://b?addressing=virtual&endpoint=http://127.0.0.1:9000", "needs a DNS name"),
                               ("s3://b?addressing=virtual&endpoint=http://[::1]:9000", "needs a DNS name"),
                               ("s3://b?secret_access_key=x", "looks like a credential"), ("s3://b?aws_session_token=x", "looks like a credential"),
                               ("s3://b?colour=blue", "no parameter \"colour\""), ("s3://b?profile=nope", "\"nope\" is not in"),
                               ("s3://b?addressing=sideways", "addressing=path or addressing=virtual"), ("s3://b?region=a&region=b", "given twice")] {
            XCTAssertThrowsError(try S3Configuration.resolve(url: url, environment: env), url) { error in
                XCTAssertEqual((error as? StorageError)?.kind, .invalidLocation, url)
                XCTAssertTrue("\(error)".contains(message), "\(url): \(error)")
                XCTAssertFalse("\(error)".contains("secretenv"))
            }
        }
    }

    func testEndpointPrecedenceAndAddressing() throws {
        var env = files
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000"
        XCTAssertTrue(try S3Configuration.resolve(url: "s3://b", environment: env).pathStyle, "path-style for IP endpoints")
        env["AWS_ENDPOINT_URL_S3"] = "https://storage.example.com"
        let s3Specific = try S3Configuration.resolve(url: "s3://b", environment: env)
        XCTAssertEqual(s3Specific.endpoint.host, "storage.example.com", "AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL")
        XCTAssertFalse(s3Specific.pathStyle)
        let flags = try S3Configuration.resolve(url: "s3://b", settings: .init(endpoint: "http://localhost:5000", region: "x-1", pathStyle: false), environment: env)
        XCTAssertEqual(flags.endpoint.absoluteString, "http://localhost:5000")
        XCTAssertEqual(flags.region, "x-1")
        XCTAssertFalse(flags.pathStyle, "--no-s3-path-style is honoured")
        XCTAssertThrowsError(try S3Configuration.resolve(url: "s3://", environment: env))
        XCTAssertThrowsError(try S3Configuration.resolve(url: "s3://b", settings: .init(endpoint: "ftp://x"), environment: env))
    }
}
