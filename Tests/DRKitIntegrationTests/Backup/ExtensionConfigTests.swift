import XCTest
import Foundation
import TestSupport
import PostgresClient
@testable import DRKit

/// Extension configuration tables (`pg_extension_config_dump`) carry the rows their filter selects.
final class ExtensionConfigTests: DRKitTestCase {
    /// A tiny extension with a configuration table, installed into the test server's extension folder
    /// (tests run as root on a throwaway machine; the files are the same on every run).
    private func installTestExtension() throws {
        let sharedir = try Command.run("/usr/bin/pg_config", ["--sharedir"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let folder = URL(fileURLWithPath: sharedir).appendingPathComponent("extension")
        try "default_version = '1.0'\nrelocatable = false\nschema = public\ncomment = 'drkit test: an extension with a configuration table'\n"
            .write(to: folder.appendingPathComponent("drkit_config_test.control"), atomically: true, encoding: .utf8)
        try """
            CREATE TABLE drkit_settings (name text PRIMARY KEY, value text NOT NULL, shipped boolean NOT NULL DEFAULT false);
            INSERT INTO drkit_settings VALUES ('version', '1.0', true);
            SELECT pg_catalog.pg_extension_config_dump('drkit_settings', 'WHERE NOT shipped');
            """.write(to: folder.appendingPathComponent("drkit_config_test--1.0.sql"), atomically: true, encoding: .utf8)
    }

    func testConfigurationTableRowsAddedByUsersRoundTrip() throws {
        try installTestExtension()
        let source = try newDatabase("ct_extcfg", sql: """
            CREATE EXTENSION drkit_config_test;
            INSERT INTO drkit_settings VALUES ('tenant', 'acme', false), ('region', 'eu-west', false);
            CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);
            """)
        let id = try backup(source)
        let target = scratchName("ct_extcfg_restored")
        let restored = try restore(id, into: target, extra: ["--key-file", keyFile])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let rows = "SELECT string_agg(name || '=' || value || ':' || shipped, ',' ORDER BY name) FROM drkit_settings"
        XCTAssertEqual(try PostgresClientBridge.scalar(rows, in: target), "region=eu-west:false,tenant=acme:false,version=1.0:true")
        XCTAssertEqual(try PostgresClientBridge.scalar(rows, in: target), try PostgresClientBridge.scalar(rows, in: source))
    }
}
