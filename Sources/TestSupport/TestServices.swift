import Foundation
import PostgresClient
import Common

/// The services integration tests need, as started by `scripts/test.sh`. A missing service is an
/// error, never a reason to skip.
public enum TestServices {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    static func environment(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw Missing(description: "\(name) is not set: run the tests through scripts/test.sh, which starts PostgreSQL, moto and Ceph RGW")
        }
        return value
    }

    /// conninfo for `database` on the test PostgreSQL server, with password auth.
    public static func postgres(database: String = "postgres") throws -> String {
        try conninfo(variablePrefix: "DRKIT_TEST_PG", database: database)
    }

    /// conninfo for `database` on the PostgreSQL 18 server of the version matrix (scripts/pg18.sh).
    public static func postgres18(database: String = "postgres") throws -> String {
        try conninfo(variablePrefix: "DRKIT_TEST_PG18_PG", database: database)
    }

    /// conninfo for `database` on the second PostgreSQL 15 cluster, the "new, empty cluster" that
    /// whole-cluster restores rebuild (scripts/test.sh starts it; DRKIT_TEST_PG2_PG*).
    public static func secondCluster(database: String = "postgres") throws -> String {
        try conninfo(variablePrefix: "DRKIT_TEST_PG2_PG", database: database)
    }

    /// conninfo for `database` on the PostgreSQL 15 cluster with a small lock table
    /// (`max_locks_per_transaction` 10: 1,320 lock slots; scripts/test.sh starts it; DRKIT_TEST_LOCKS_PG*).
    public static func smallLockTable(database: String = "postgres") throws -> String {
        try conninfo(variablePrefix: "DRKIT_TEST_LOCKS_PG", database: database)
    }

    private static func conninfo(variablePrefix prefix: String, database: String) throws -> String {
        let host = try environment(prefix + "HOST"), port = try environment(prefix + "PORT")
        let user = try environment(prefix + "USER"), password = try environment(prefix + "PASSWORD")
        return "host=\(host) port=\(port) user=\(user) password=\(password) dbname=\(Connection.quoteLiteral(database).dropFirst().dropLast()) connect_timeout=10"
    }

    /// The PostgreSQL 18 binaries (pg_dump 18 among them).
    public static func pg18Bindir() throws -> String { try environment("DRKIT_PG18_BINDIR") }

    public static var password: String { (try? environment("DRKIT_TEST_PGPASSWORD")) ?? "" }

    /// An S3 server for tests: moto (scripts/s3-server.sh) or Ceph RGW (scripts/rgw-server.sh).
    public struct S3: Sendable {
        public var endpoint: String
        public var bucket: String
        public var accessKey: String
        public var secretKey: String
        public var port: Int { Int(endpoint.split(separator: ":").last ?? "") ?? 0 }

        /// A repository URL on this server that names its endpoint and a profile of `twoIdentities`.
        public func repository(_ prefix: String, profile: String, endpoint: String? = nil) -> String {
            let encoded = (endpoint ?? self.endpoint).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            return "s3://\(bucket)/\(prefix)?endpoint=\(encoded)&profile=\(profile)"
        }

        /// Environment for a drkit or aws process talking to it (optionally through another endpoint).
        public func environment(endpoint: String? = nil, secret: String? = nil) -> [String: String] {
            ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secret ?? secretKey, "AWS_REGION": "us-east-1",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint ?? self.endpoint]
        }
    }

    /// moto, signature checking on: the fast suite's S3.
    public static func s3() throws -> S3 {
        S3(endpoint: try environment("DRKIT_TEST_S3_ENDPOINT"), bucket: try environment("DRKIT_TEST_S3_BUCKET"),
           accessKey: try environment("DRKIT_TEST_S3_ACCESS_KEY"), secretKey: try environment("DRKIT_TEST_S3_SECRET_KEY"))
    }

    /// Ceph RADOS Gateway: a real S3 implementation, for the conformance and fault tests.
    public static func rgw() throws -> S3 {
        S3(endpoint: try environment("DRKIT_TEST_RGW_ENDPOINT"), bucket: try environment("DRKIT_TEST_RGW_BUCKET"),
           accessKey: try environment("DRKIT_TEST_RGW_ACCESS_KEY"), secretKey: try environment("DRKIT_TEST_RGW_SECRET_KEY"))
    }

    /// Writes an AWS shared credentials and config file naming the moto server's identity `moto` and
    /// RGW's `ceph`, and returns the environment that uses them and nothing else: each repository then
    /// names its server and identity on its URL (`?endpoint=...&profile=...`), as two regions would.
    public static func twoIdentities(in directory: URL) throws -> [String: String] {
        let moto = try s3(), ceph = try rgw()
        let credentials = directory.appendingPathComponent("aws-credentials"), config = directory.appendingPathComponent("aws-config")
        try """
            [moto]
            aws_access_key_id = \(moto.accessKey)
            aws_secret_access_key = \(moto.secretKey)
            [ceph]
            aws_access_key_id = \(ceph.accessKey)
            aws_secret_access_key = \(ceph.secretKey)

            """.write(to: credentials, atomically: true, encoding: .utf8)
        try "[profile moto]\nregion = us-east-1\n[profile ceph]\nregion = us-east-1\n".write(to: config, atomically: true, encoding: .utf8)
        return ["AWS_SHARED_CREDENTIALS_FILE": credentials.path, "AWS_CONFIG_FILE": config.path, "HOME": directory.path,
                "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_ENDPOINT_URL": "", "AWS_PROFILE": ""]
    }

    /// A TCP port free on 127.0.0.1 right now, for a server a test starts itself.
    public static func freePort() throws -> Int {
        let result = try Command.run("/usr/bin/env", ["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        guard let port = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Missing(description: "no free port: \(result.stderr)")
        }
        return port
    }

    /// The package root (for shipped files such as cutover-checklists/ and manifests/).
    public static var packageRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }

    public static var s3Secret: String { (try? environment("DRKIT_TEST_S3_SECRET_KEY")) ?? "" }

    /// A fresh, uniquely named database on `server` (the main test cluster unless told).
    public static func createDatabase(_ prefix: String, on server: () throws -> String = { try postgres() }) throws -> String {
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try Connection(conninfo: try server())
        try admin.execute("CREATE DATABASE \(Connection.quoteIdentifier(name)) TEMPLATE template0 ENCODING 'UTF8'")
        return name
    }

    public static func dropDatabase(_ name: String) { dropDatabases([name]) }

    /// Drops `names` on `server` (the main test cluster unless told), whatever is still connected; for
    /// teardown, so failures are ignored.
    public static func dropDatabases(_ names: [String], on server: () throws -> String = { try postgres() }) {
        guard !names.isEmpty, let conninfo = try? server(), let admin = try? Connection(conninfo: conninfo) else { return }
        for name in names { _ = try? admin.execute("DROP DATABASE IF EXISTS \(Connection.quoteIdentifier(name)) WITH (FORCE)") }
    }

    public static func databaseExists(_ name: String) throws -> Bool {
        let admin = try Connection(conninfo: try postgres())
        return try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).count > 0
    }

    /// Path of the built `drkit` executable (beside the test bundle).
    public static var drkitExecutable: String {
        if let configured = ProcessInfo.processInfo.environment["DRKIT_BIN"] { return configured }
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidate = bundleDirectory.appendingPathComponent("drkit").path
        if !FileManager.default.isExecutableFile(atPath: candidate) {
            candidate = bundleDirectory.deletingLastPathComponent().appendingPathComponent("drkit").path
        }
        return candidate
    }
}

/// Runs a command and captures its output.
public struct CommandResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var stdoutBytes: Data

    public init(status: Int32, stdout: String, stderr: String, stdoutBytes: Data) {
        (self.status, self.stdout, self.stderr, self.stdoutBytes) = (status, stdout, stderr, stdoutBytes)
    }
}

public enum Command {
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           stdin: Data? = nil, directory: String? = nil) throws -> CommandResult {
        let process = Process()
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DRKIT_KEY")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        let errData = Locked(Data())
        let errThread = Thread { errData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
        errThread.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errThread.isFinished { usleep(1000) }
        return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData.current, as: UTF8.self), stdoutBytes: outData)
    }

    public static func drkit(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws -> CommandResult {
        try run(TestServices.drkitExecutable, arguments, environment: environment, directory: directory)
    }

    /// Starts drkit in the background (to pause, kill or race it); output goes to `stderr` when given,
    /// else nowhere. `environment` is laid over this process's.
    public static func startDrkit(_ arguments: [String], environment: [String: String] = [:], stderr: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestServices.drkitExecutable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderr ?? FileHandle.nullDevice
        try process.run()
        return process
    }
}
