import ArgumentParser
import Common
import DRKit
import Foundation

struct AuditFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Record the audit trail in this PostgreSQL database (table runbook_executions). Also: DRKIT_AUDIT_DB.", valueName: "conninfo"))
    var auditDb: String?
    @Option(name: .long, help: ArgumentHelp("Append-only hash-chained JSON-lines audit file (default $XDG_DATA_HOME/drkit/audit.jsonl). Also: DRKIT_AUDIT_FILE.", valueName: "path"))
    var auditFile: String?

    func open() throws -> AuditStore { try AuditTrail.open(database: auditDb, file: auditFile) }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The audit trail of runbook executions (gate and drill steps).",
                                                    subcommands: [ListRecords.self, Verify.self])

    struct ListRecords: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List recorded steps, oldest first.")
        @Option(name: .customLong("run"), help: ArgumentHelp("Only this run.", valueName: "run-id"))
        var runId: String?
        @OptionGroup var audit: AuditFlags
        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            try runReportingErrors {
                let store = try audit.open()
                let records = try store.records().filter { runId == nil || $0.runId == runId }
                if json { Console.shared.output(try JSONText.encode(records)); return }
                if records.isEmpty { Console.shared.output("no audit records in \(store.location)"); return }
                Console.shared.output(records.map {
                    "\(Timestamps.iso8601($0.startedAt))  \($0.runId)  \($0.checklist)  #\($0.stepIndex) \($0.step)  \($0.result)  exit \($0.exitCode.map(String.init) ?? "-")  by \($0.operatorName)"
                }.joined(separator: "\n"))
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check the hash chain: exit 1 when any record was edited, removed or reordered.")
        @OptionGroup var audit: AuditFlags

        func run() throws {
            try runWithCheckExitCodes {
                let store = try audit.open()
                let result = try AuditTrail.verify(store)
                Console.shared.output((result.problems + [result.passed ? "audit trail intact: \(result.records) records in \(store.location)" : "audit trail TAMPERED: \(result.problems.count) problem(s) in \(store.location)"]).joined(separator: "\n"))
                if !result.passed { throw DRKitError(.checkFailed, "audit trail verification failed: \(result.problems.first ?? "")") }
            }
        }
    }
}
