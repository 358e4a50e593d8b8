import Foundation
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
