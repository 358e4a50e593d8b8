import Foundation
import Archive
import Common

/// One step as the evidence shows it.
public struct StepEvidence: Codable, Sendable {
    public var index: Int
    public var name: String
    public var kind: String
    public var advisory: Bool
    /// passed | failed | advisory-failed | skipped
    public var result: String
    public var summary: String
    public var figure: String
    public var rule: String
    public var startedAt: Date?
    public var finishedAt: Date?
    public var durationSeconds: Double
    public var exitCode: Int?
    public var outputSHA256: String?
}

/// Records runbook steps as they finish: prints one line, appends an audit record, keeps the evidence.
public final class RunbookRecorder {
    public let runId: String
    public let checklist: String
    public let operatorName: String
    let audit: AuditStore
    let console: Console
    public private(set) var steps: [StepEvidence] = []

    public init(checklist: String, operatorName: String, audit: AuditStore, console: Console = .shared) {
        self.runId = BackupId.make().replacingOccurrences(of: "Z-", with: "Z-run-")
        self.checklist = checklist
        self.operatorName = operatorName
        self.audit = audit
        self.console = console
    }

    public static func defaultOperator(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let user = environment["USER"] ?? environment["LOGNAME"], !user.isEmpty { return user }
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid \(geteuid())"
    }

    @discardableResult
    public func record(name: String, kind: String, advisory: Bool, outcome: StepOutcome, startedAt: Date, finishedAt: Date) throws -> StepEvidence {
        let result = outcome.passed ? "passed" : (advisory ? "advisory-failed" : "failed")
        let hash = SHA256.hex(outcome.output)
        let evidence = StepEvidence(index: steps.count + 1, name: name, kind: kind, advisory: advisory, result: result,
                                    summary: outcome.summary, figure: outcome.figure, rule: outcome.rule,
                                    startedAt: startedAt, finishedAt: finishedAt,
                                    durationSeconds: finishedAt.timeIntervalSince(startedAt), exitCode: outcome.exitCode, outputSHA256: hash)
        steps.append(evidence)
        let mark = outcome.passed ? "PASS" : (advisory ? "WARN" : "FAIL")
        console.output("[\(evidence.index)] \(mark) \(name) (\(kind), \(Format.seconds(evidence.durationSeconds)) s): \(outcome.summary)")
        _ = try audit.append(AuditRecord(runId: runId, checklist: checklist, step: name, stepIndex: evidence.index,
                                         operatorName: operatorName, startedAt: startedAt, finishedAt: finishedAt, result: result,
                                         exitCode: outcome.exitCode, outputSHA256: hash, prevHash: "", hash: ""))
        return evidence
    }

    public func skipped(name: String, kind: String, advisory: Bool, reason: String) {
        steps.append(StepEvidence(index: steps.count + 1, name: name, kind: kind, advisory: advisory, result: "skipped",
                                  summary: reason, figure: "-", rule: "-", startedAt: nil, finishedAt: nil, durationSeconds: 0,
                                  exitCode: nil, outputSHA256: nil))
    }
}

/// evidence.json and a Markdown record of a gate run.
public struct GateReport: Codable, Sendable {
    public var tool = "drkit"
    public var toolVersion = DRKitVersion.current
    public var kind = "gate"
    public var runId: String
    public var checklist: String
    public var checklistFile: String
    public var operatorName: String
    public var startedAt: Date
    public var finishedAt: Date
    public var durationSeconds: Double
    /// passed | failed
    public var result: String
    public var failedStep: String?
    public var auditTrail: String
    public var steps: [StepEvidence]

    enum CodingKeys: String, CodingKey {
        case tool, toolVersion, kind, runId, checklist, checklistFile, operatorName = "operator", startedAt, finishedAt
        case durationSeconds, result, failedStep, auditTrail, steps
    }

    public func markdown() -> String {
        var lines = [
            "# Gate record: \(checklist)", "",
            "- Date: \(Timestamps.iso8601(startedAt))",
            "- Checklist: `\(checklistFile)`",
            "- Run id: `\(runId)`",
            "- Operator: \(operatorName)",
            "- Result: **\(result.uppercased())**\(failedStep.map { " (stopped at step `\($0)`)" } ?? "")",
            "- Duration: \(Format.seconds(durationSeconds)) s",
            "- Audit trail: \(auditTrail)",
            "- Tool: drkit \(toolVersion)", "",
            "## Steps", "",
            "| # | step | kind | result | figure | rule | duration (s) | output SHA-256 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in steps {
            lines.append("| \(s.index) | \(s.name) | \(s.kind) | \(s.result) | \(MarkdownText.cell(s.figure)) | \(MarkdownText.cell(s.rule)) | \(Format.seconds(s.durationSeconds)) | \(s.outputSHA256.map { "`\($0.prefix(16))…`" } ?? "-") |")
        }
        lines += ["", "## Findings", ""]
        lines += steps.map { "- **\($0.name)** (\($0.result)): \(MarkdownText.cell($0.summary))" }
        return lines.joined(separator: "\n") + "\n"
    }
}

enum MarkdownText {
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}

public enum EvidenceFiles {
    public static func write(json: some Encodable, markdown: String, markdownName: String, to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try JSONCoding.encoder.encode(json).write(to: URL(fileURLWithPath: directory + "/evidence.json"), options: .atomic)
            try markdown.write(toFile: directory + "/" + markdownName, atomically: true, encoding: .utf8)
        } catch {
            throw DRKitError(.usage, "cannot write evidence to \(directory): \(error.localizedDescription)")
        }
    }
}

/// Runs a checklist: steps in order, the first failure of a required step stops the run.
public enum GateRunner {
    public struct Options: Sendable {
        public var checklistPath: String
        public var evidenceDirectory: String?
        public var context: StepContext
        public init(checklistPath: String, evidenceDirectory: String?, context: StepContext) {
            self.checklistPath = checklistPath
            self.evidenceDirectory = evidenceDirectory
            self.context = context
        }
    }

    public static func plan(_ checklist: Checklist) -> String {
        var lines = ["plan for \(checklist.name) (\(checklist.steps.count) steps; stops at the first failure of a required step):"]
        for (i, step) in checklist.steps.enumerated() {
            lines.append("  \(i + 1). \(step.name) [\(step.kind)\(step.isAdvisory ? ", advisory" : "")]: \(StepExecutor.rule(for: step))")
        }
        return lines.joined(separator: "\n")
    }

    public static func run(_ checklist: Checklist, options: Options, audit: AuditStore, console: Console = .shared) throws -> GateReport {
        let start = Date()
        let recorder = RunbookRecorder(checklist: checklist.name, operatorName: options.context.operatorName, audit: audit, console: console)
        console.note("gate \(checklist.name): run \(recorder.runId), operator \(recorder.operatorName), audit trail \(audit.location)")
        var failedStep: String?
        for step in checklist.steps {
            if let failedStep {
                recorder.skipped(name: step.name, kind: step.kind, advisory: step.isAdvisory, reason: "not run: step \(failedStep) failed")
                continue
            }
            let started = Date()
            let outcome = StepExecutor.execute(step, context: options.context)
            try recorder.record(name: step.name, kind: step.kind, advisory: step.isAdvisory, outcome: outcome, startedAt: started, finishedAt: Date())
            if !outcome.passed && !step.isAdvisory { failedStep = step.name }
        }
        let finished = Date()
        let report = GateReport(runId: recorder.runId, checklist: checklist.name, checklistFile: options.checklistPath,
                                operatorName: recorder.operatorName, startedAt: start, finishedAt: finished,
                                durationSeconds: finished.timeIntervalSince(start), result: failedStep == nil ? "passed" : "failed",
                                failedStep: failedStep, auditTrail: audit.location, steps: recorder.steps)
        if let directory = options.evidenceDirectory {
            try EvidenceFiles.write(json: report, markdown: report.markdown(), markdownName: "gate-record.md", to: directory)
        }
        return report
    }
}
