import Archive
import PostgresClient
import Foundation
import Common

/// Runs `pg_dump` for DDL only, as DESIGN.md allows: drkit never generates DDL itself.
/// The password travels in the child's environment, never on its command line.
struct PgDump {
    let executable: String

    /// pg_dump refuses a server newer than itself, so it must be of the server's major or newer:
    /// `DRKIT_PG_DUMP` if set (checked like the others), else the oldest fitting one among Debian's
    /// per-version folders (`/usr/lib/postgresql/N/bin`), else among `PATH`'s. When none fits, one line
    /// says which server major, which pg_dump versions were found where, and what to install (exit 7).
    static func locate(serverMajor: Int, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PgDump {
        let configured = environment["DRKIT_PG_DUMP"].flatMap { $0.isEmpty ? nil : $0 }
        var tiers: [[String]] = configured.map { [[$0]] } ?? []
        if configured == nil {
            let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
            tiers.append(installed.compactMap(Int.init).sorted().map { "/usr/lib/postgresql/\($0)/bin/pg_dump" })
            // Asked only when no version folder fits: on Debian, PATH's pg_dump is a wrapper script slow to start.
            tiers.append((environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/pg_dump" })
        }
        var found: [(path: String, version: String, major: Int)] = []
        var seen = Set<String>()  // real paths: a PATH entry linking to a version folder is asked once
        for candidates in tiers {
            for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
                guard seen.insert(URL(fileURLWithPath: path).resolvingSymlinksInPath().path).inserted else { continue }
                let version = PgDump(executable: path).version()
                found.append((path, version, PgDump.major(ofVersionLine: version) ?? 0))
            }
            if let fit = found.filter({ $0.major >= serverMajor }).min(by: { $0.major < $1.major }) {
                return PgDump(executable: fit.path)
            }
        }
        let searched = found.isEmpty ? "no pg_dump found" + (configured.map { " (DRKIT_PG_DUMP=\($0) is not executable)" } ?? " in /usr/lib/postgresql/*/bin or PATH")
            : "found " + found.map { "\($0.version.split(separator: " ").last.map(String.init) ?? "?") (\($0.path))" }.joined(separator: ", ")
        throw DRKitError(.tool, "the server runs PostgreSQL \(serverMajor), which needs pg_dump \(serverMajor) or newer; \(searched). Install it (Debian/Ubuntu: apt-get install postgresql-client-\(serverMajor), from apt.postgresql.org if your release lacks it) or set DRKIT_PG_DUMP to a pg_dump \(serverMajor)+")
    }

    /// 15 from "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb13u1)", 18 from "... 18.6".
    static func major(ofVersionLine line: String) -> Int? {
        guard let range = line.range(of: "(PostgreSQL) ") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
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

    /// Runs pg_dump with `arguments` against `conninfo`, streaming stdout to `output`. drkit's own
    /// schema-change capture (`SchemaCapture`) is left out of every dump: it is not the user's schema.
    func run(arguments: [String], conninfo: String, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !arguments.contains("--format=custom") else {
            return try runUnfiltered(arguments: arguments + SchemaCapture.dumpArguments, conninfo: conninfo, output: output)
        }
        var filter = SchemaCapture.DumpFilter()
        try runUnfiltered(arguments: arguments + SchemaCapture.dumpArguments, conninfo: conninfo) { chunk in
            let kept = filter.feed(chunk)
            if !kept.isEmpty { try kept.withUnsafeBytes { try output($0) } }
        }
        let rest = filter.finish()
        if !rest.isEmpty { try rest.withUnsafeBytes { try output($0) } }
    }

    private func runUnfiltered(arguments: [String], conninfo: String, output: (UnsafeRawBufferPointer) throws -> Void) throws {
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
