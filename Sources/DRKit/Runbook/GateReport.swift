import Foundation
import Common

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
