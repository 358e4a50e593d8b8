import ArgumentParser
import Foundation
import Archive
import Common
import DRKit

struct AuditFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Record the audit trail in this PostgreSQL database (table runbook_executions). Also: DRKIT_AUDIT_DB.", valueName: "conninfo"))
    var auditDb: String?
    @Option(name: .long, help: ArgumentHelp("Append-only hash-chained JSON-lines audit file (default $XDG_DATA_HOME/drkit/audit.jsonl). Also: DRKIT_AUDIT_FILE.", valueName: "path"))
    var auditFile: String?

    func open() throws -> AuditStore { try AuditTrail.open(database: auditDb, file: auditFile) }
}

/// For commands whose contract is 0 pass, 1 fail, 2 any error.
func runWithCheckExitCodes(_ body: () throws -> Void) throws {
    do { try runReportingErrors(body) } catch let exit as ExitCode where exit.rawValue > 1 {
        throw ExitCode(2)
    }
}

struct Gate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a promotion or cutover checklist: steps in order, stop at the first failure, every step audited.",
        discussion: "Step kinds: schema-diff, env-check, verify, parity, backup-fresh, command, file-unchanged, attest. ${VAR} in step fields comes from the environment. Writes evidence.json and gate-record.md to --evidence-dir. Exit codes: 0 passed (advisory failures allowed), 1 a required step failed, 2 the checklist or options are invalid.")

    @Argument(help: "Checklist YAML file, e.g. cutover-checklists/promotion.yaml")
    var checklist: String
    @Flag(name: .long, help: "Print the plan and exit without running anything.")
    var dryRun = false
    @Option(name: .long, help: ArgumentHelp("Directory for evidence.json and gate-record.md.", valueName: "dir"))
    var evidenceDir: String?
    @Option(name: .long, help: ArgumentHelp("Who runs the checklist (default: the OS user).", valueName: "name"))
    var `operator`: String?
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Confirm an attest step: STEP or STEP=note (repeatable).", valueName: "step[=note]"))
    var attest: [String] = []
    @OptionGroup var audit: AuditFlags
    @OptionGroup var s3: S3Flags
    @Flag(name: .long, help: "Print the report as JSON on stdout.")
    var json = false

    func run() throws {
        try runWithCheckExitCodes {
            let list = try Checklist.load(path: checklist)
            if dryRun {
                Console.shared.output(GateRunner.plan(list))
                return
            }
            var attestations: [String: String] = [:]
            for item in attest {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                attestations[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            let unknown = attestations.keys.filter { key in !list.steps.contains { $0.name == key && $0.kind == "attest" } }
            if !unknown.isEmpty { throw DRKitError(.usage, "--attest names no attest step of this checklist: \(unknown.sorted().joined(separator: ", "))") }
            let context = StepContext(attestations: attestations, operatorName: self.operator ?? RunbookRecorder.defaultOperator(),
                                      interactive: isatty(STDIN_FILENO) == 1, s3: s3.options)
            let report = try GateRunner.run(list, options: .init(checklistPath: checklist, evidenceDirectory: evidenceDir, context: context),
                                            audit: try audit.open(), console: json ? Console(outputToStderr: true) : .shared)
            if json { Console.shared.output(try JSONText.encode(report)) }
            else {
                Console.shared.output("gate \(report.checklist): \(report.result.uppercased()) (\(report.steps.filter { $0.result != "skipped" }.count) of \(report.steps.count) steps run, \(Format.seconds(report.durationSeconds)) s)" + (evidenceDir.map { "; evidence in \($0)" } ?? ""))
            }
            if let failed = report.failedStep {
                throw DRKitError(.checkFailed, "checklist \(report.checklist) failed at step \(failed): \(report.steps.first { $0.name == failed }?.summary ?? "")")
            }
        }
    }
}

struct Env: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Environment separation checks.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check environment variables against separation rules (distinct secrets, key prefixes, endpoint hosts, required variables).",
            discussion: "Values are never printed: findings show the variable, the rule and a masked hint such as sk_live_…(32 chars). Reads the env files given (later ones win), else the process environment. Exit codes: 0 all rules pass, 1 a rule fails, 2 error.")

        @Option(name: .long, help: ArgumentHelp("Rules file.", valueName: "path"))
        var rules = "manifests/env-separation.yaml"
        @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Env file of KEY=VALUE lines (repeatable).", valueName: "path"))
        var envFile: [String] = []
        @Flag(name: .long, help: "Also read the process environment when env files are given (files win).")
        var includeProcessEnv = false
        @Flag(name: .long, help: "Print the report as JSON on stdout.")
        var json = false

        func run() throws {
            try runWithCheckExitCodes {
                let ruleSet = try EnvRules.load(path: rules)
                let (environment, sources) = try EnvCheck.environment(files: envFile, includeProcess: includeProcessEnv)
                let report = EnvCheck.run(ruleSet, environment: environment, sources: sources)
                if json {
                    Console.shared.output(try JSONText.encode(report))
                } else {
                    var lines = report.findings.map { "\($0.passed ? "ok  " : "FAIL") \($0.rule): \($0.message)" }
                    lines.append("env check: \(report.findings.filter(\.passed).count) of \(report.findings.count) rules pass (\(report.sources.joined(separator: ", ")))")
                    Console.shared.output(lines.joined(separator: "\n"))
                }
                if !report.passed {
                    throw DRKitError(.checkFailed, "environment separation failed: " + report.findings.filter { !$0.passed }.map(\.rule).joined(separator: ", "))
                }
            }
        }
    }
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
