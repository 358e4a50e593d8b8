import Foundation
import Archive
import Common
import PostgresClient

/// Runs `pg_dump` for DDL only, as DESIGN.md allows: drkit never generates DDL itself.
/// The password travels in the child's environment, never on its command line.
struct PgDump {
    let executable: String

    static func locate(serverMajor: Int, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PgDump {
        if let configured = environment["DRKIT_PG_DUMP"], !configured.isEmpty {
            return PgDump(executable: configured)
        }
        // Debian and Ubuntu keep one folder per major version; pg_dump must be at least the server's.
        for major in [serverMajor, 18, 17, 16, 15] where major >= serverMajor {
            let candidate = "/usr/lib/postgresql/\(major)/bin/pg_dump"
            if FileManager.default.isExecutableFile(atPath: candidate) { return PgDump(executable: candidate) }
        }
        for directory in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/pg_dump"
            if FileManager.default.isExecutableFile(atPath: candidate) { return PgDump(executable: candidate) }
        }
        throw DRKitError(.tool, "pg_dump not found (install postgresql-client, or set DRKIT_PG_DUMP)")
    }

    /// A 0700 directory holding a 0600 `pg_service.conf` with service `drkit` carrying `sslpassword`.
    static func privateServiceFile(sslPassword: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("drkit-pgservice-\(UUID().uuidString)").path
        guard mkdir(directory, 0o700) == 0 else { throw DRKitError(.tool, "cannot create \(directory): \(String(cString: strerror(errno)))") }
        let path = directory + "/pg_service.conf"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DRKitError(.tool, "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let escaped = sslPassword.replacingOccurrences(of: "\n", with: "")
        try FileDescriptorSink(fd: fd).write(Array("[drkit]\nsslpassword=\(escaped)\n".utf8))
        return directory
    }

    /// Runs pg_dump with `arguments` against `conninfo`, streaming stdout to `output`.
    func run(arguments: [String], conninfo: String, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        var options = try ConnectionOptions(conninfo)
        var environment = ProcessInfo.processInfo.environment
        if let password = options["password"] {
            environment["PGPASSWORD"] = password
            options["password"] = nil
        }
        // libpq has no environment variable for sslpassword: it goes in a service file only this
        // user can read, which pg_dump is pointed at, and which is removed when pg_dump exits.
        var serviceDirectory: String?
        defer { if let serviceDirectory { try? FileManager.default.removeItem(atPath: serviceDirectory) } }
        if let sslPassword = options["sslpassword"], options["service"] == nil {
            let directory = try PgDump.privateServiceFile(sslPassword: sslPassword)
            serviceDirectory = directory
            environment["PGSERVICEFILE"] = directory + "/pg_service.conf"
            options["sslpassword"] = nil
            options["service"] = "drkit"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--no-password", "--dbname=" + options.conninfo]
        process.environment = environment
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw DRKitError(.tool, "cannot start \(executable): \(error.localizedDescription)")
        }
        let errorText = Locked(Data())
        let errorReader = Thread {
            let data = stderr.fileHandleForReading.readDataToEndOfFile()
            errorText.withLock { $0 = data }
        }
        errorReader.start()
        var outputError: Error?
        let handle = stdout.fileHandleForReading
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            if outputError == nil {
                do { try chunk.withUnsafeBytes { try output($0) } } catch {
                    outputError = error
                    process.terminate()
                }
            }
        }
        process.waitUntilExit()
        while errorReader.isExecuting || !errorReader.isFinished { usleep(1000) }
        if let outputError { throw outputError }
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errorText.current, as: UTF8.self)
                .split(whereSeparator: \.isNewline).map(String.init).joined(separator: "; ")
            throw DRKitError(.tool, "pg_dump failed (exit \(process.terminationStatus)): \(message)")
        }
    }
}
