import XCTest
import Foundation
import TestSupport
@testable import DRKit
import Common

final class EnvCheckTests: DRKitTestCase {
    var secrets: [String] { EnvCheckTests.secrets }
    var good: [String: String] { EnvCheckTests.goodEnvironment }

    static let secrets = ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2", "whsec_prodAAAAAAAAAAAAAAAAAAAA",
                   "whsec_stagingBBBBBBBBBBBBBBBBBB"]

    func envFile(_ name: String, _ values: [String: String]) throws -> String {
        let path = workDirectory.appendingPathComponent(name).path
        try values.map { "export \($0.key)=\"\($0.value)\"" }.sorted().joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static var goodEnvironment: [String: String] {
        ["STRIPE_API_KEY_PROD": secrets[0], "STRIPE_API_KEY_STAGING": secrets[1],
         "STRIPE_WEBHOOK_SECRET_PROD": secrets[2], "STRIPE_WEBHOOK_SECRET_STAGING": secrets[3],
         "INGESTION_ENDPOINT_URL_PROD": "https://api.provider.com/v2/ingest?token=\(secrets[2])",
         "INGESTION_ENDPOINT_URL_STAGING": "https://user:\(secrets[3])@staging.provider.com/v2/ingest"]
    }

    func check(_ file: String) throws -> CommandResult {
        try Command.drkit(["env", "check", "--rules", TestServices.packageRoot + "/manifests/env-separation.yaml", "--env-file", file])
    }

    func assertNoSecret(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        for secret in secrets + ["4eC39HqLyjWDarjtT1zdp7dc", "BQokikJOvBiI2HlWgH4olfQ2"] {
            XCTAssertFalse(text.contains(secret), "secret leaked: \(text)", file: file, line: line)
        }
    }

    func testGoodEnvironmentPasses() throws {
        let result = try check(try envFile("good.env", good))
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("8 of 8 rules pass"), result.stdout)
        assertNoSecret(result.stdout + result.stderr)
    }

    func testBadEnvironmentFailsWithMaskedHints() throws {
        var bad = good
        bad["STRIPE_API_KEY_STAGING"] = secrets[0]                       // same key in both environments
        bad["STRIPE_API_KEY_PROD"] = secrets[0]
        bad["STRIPE_WEBHOOK_SECRET_STAGING"] = ""                         // empty
        bad["INGESTION_ENDPOINT_URL_PROD"] = "https://sandbox.provider.com/ingest"
        let result = try check(try envFile("bad.env", bad))
        XCTAssertEqual(result.status, 1)
        let out = result.stdout
        XCTAssertTrue(out.contains("FAIL stripe-api-keys-differ: STRIPE_API_KEY_PROD and STRIPE_API_KEY_STAGING have the same value (sk_live_…(32 chars))"), out)
        XCTAssertTrue(out.contains("FAIL staging-stripe-key-is-test: STRIPE_API_KEY_STAGING is sk_live_…(32 chars), must start with sk_test_ or rk_test_"), out)
        XCTAssertTrue(out.contains("FAIL stripe-webhook-secrets-differ: STRIPE_WEBHOOK_SECRET_STAGING is not set or empty"), out)
        XCTAssertTrue(out.contains("FAIL prod-ingestion-not-staging: INGESTION_ENDPOINT_URL_PROD points at host sandbox.provider.com"), out)
        XCTAssertTrue(out.contains("ok   prod-stripe-key-is-live"), out)
        assertNoSecret(out + result.stderr)
        let json = try Command.drkit(["env", "check", "--rules", TestServices.packageRoot + "/manifests/env-separation.yaml",
                                      "--env-file", try envFile("bad2.env", bad), "--json"])
        assertNoSecret(json.stdout)
    }

    func testGateEvidenceHoldsNoSecrets() throws {
        var bad = good
        bad["STRIPE_API_KEY_STAGING"] = secrets[0]
        let checklist = workDirectory.appendingPathComponent("env.yaml").path
        try """
            name: env
            steps:
              - {name: separation, kind: env-check, rules: \(TestServices.packageRoot)/manifests/env-separation.yaml, include_process_env: true}
            """.write(toFile: checklist, atomically: true, encoding: .utf8)
        let evidence = workDirectory.appendingPathComponent("evidence").path
        let result = try Command.drkit(["gate", checklist, "--audit-file", workDirectory.appendingPathComponent("a.jsonl").path,
                                        "--evidence-dir", evidence], environment: bad)
        XCTAssertEqual(result.status, 1)
        assertNoSecret(result.stdout + result.stderr)
        for file in try FileManager.default.contentsOfDirectory(atPath: evidence) {
            assertNoSecret(try String(contentsOfFile: evidence + "/" + file, encoding: .utf8))
        }
        assertNoSecret(try String(contentsOfFile: workDirectory.appendingPathComponent("a.jsonl").path, encoding: .utf8))
    }
}
