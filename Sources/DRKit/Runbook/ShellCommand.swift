import Foundation
import Common

/// A shell command in its own process group (Foundation's Process makes the child a group leader),
/// so a timeout can stop it and everything it started.
enum ShellCommand {
    struct Result {
        var status: Int32
        var output: String
        var timedOut: Bool
        var seconds: Double
    }

    static func run(_ command: String, environment: [String: String], workingDirectory: String, timeout: TimeInterval?) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        do { try process.run() } catch { throw DRKitError(.tool, "cannot run `\(command)`: \(error.localizedDescription)") }
        let timedOut = Locked(false)
        if let timeout {
            let pid = process.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                guard process.isRunning else { return }
                timedOut.withLock { $0 = true }
                kill(-pid, SIGTERM)
                DispatchQueue.global().asyncAfter(deadline: .now() + 2) { if process.isRunning { kill(-pid, SIGKILL) } }
            }
        }
        let reader = pipe.fileHandleForReading
        var output = Data()
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            if output.count < 4 << 20 { output.append(chunk) }
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                      timedOut: timedOut.current, seconds: Date().timeIntervalSince(start))
    }
}
