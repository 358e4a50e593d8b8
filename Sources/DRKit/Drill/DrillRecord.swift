import Foundation
import Common

/// The drill record in the shape of the team's drill template (seed 000).
enum DrillRecord {
    static func markdown(_ r: DrillReport, scenario: DrillScenario, scenarioFile: String?) -> String {
        let phase = { (name: String) -> String in
            guard let p = r.phases.first(where: { $0.name == name }) else { return "not run" }
            return "`\(p.command)` → \(p.result) (\(Format.seconds(p.seconds)) s): \(MarkdownText.cell(p.summary))"
        }
        var lines = [
            "## Drill Record",
            "- Date: \(Timestamps.iso8601(r.startedAt))",
            "- Environment: \(r.environment)",
            "- Scenario: \(r.scenario)\(scenarioFile.map { " (`\($0)`)" } ?? "")",
            "- IC: \(r.roles["ic"] ?? "not named")",
            "- Operator: \(r.roles["operator"] ?? "not named")",
            "- Observer: \(r.roles["observer"] ?? "not named")",
            "- Run ID: `\(r.runId)`",
            "",
            "### Scope",
            "- Backup: \(r.backupId ?? "none")\(r.backupSnapshotTime.map { ", snapshot \(Timestamps.iso8601($0))" } ?? "")",
            "- Repository: \(r.repository)" + (r.restoredFrom != r.repository ? "; restored from \(r.restoredFrom) (second region)" : ""),
            "- Scratch database: \(r.scratchDatabase) (\(r.scratchDropped ? "dropped after the drill" : "kept"))",
            "- Audit trail: \(r.auditTrail)",
            "",
            "### Execution Log",
            "1. Backup command + result: \(r.phases.contains { $0.name == "backup" } ? phase("backup") : "used existing backup \(r.backupId ?? "-")")",
            "2. Verify command + result: \(r.copy != nil ? "copy \(phase("copy")); primary treated as lost at \(r.primaryLostAt.map(Timestamps.iso8601) ?? "-"); verify of the copy " : "")\(phase("verify"))",
            "3. Restore command + result: \(phase("restore"))",
            "4. Migration command + result: \(phase("migrate"))",
            "5. Verification checks: smoke \(phase("smoke")); parity \(phase("parity"))",
            "6. Teardown: \(phase("teardown"))",
            "",
            "### Outcome",
            "- Pass/Fail: **\(r.result.uppercased())**",
            "- Key metrics: \(r.primaryLostAt != nil ? "RTO and RPO count from the loss of the primary; " : "")RTO \(r.rtoSeconds.map { "\(Format.seconds($0)) s" } ?? "not reached"), RPO \(r.rpoSeconds.map { String(format: "%.1f min", $0 / 60) } ?? "unknown"), \(r.rows) rows, \(Format.bytes(r.bytes)) restored",
        ]
        lines += r.phases.filter { $0.bytesPerSecond != nil }.map { "  - \($0.name): \(Format.bytes(Int64($0.bytesPerSecond!)))/s" }
        lines.append("- Criteria:")
        lines += r.criteria.map { "  - \($0.passed ? "PASS" : "FAIL") \($0.name): \($0.rule) (measured: \($0.figure))" }
        let gaps = r.criteria.filter { !$0.passed }.map { "\($0.name) (\($0.rule), measured \($0.figure))" }
        lines += [
            "- Gaps found: \(gaps.isEmpty ? "no gaps" : gaps.joined(separator: "; "))",
            "- Follow-up owner: \(gaps.isEmpty ? "-" : (r.roles["ic"] ?? "to be named"))",
            "- Follow-up due date: \(gaps.isEmpty ? "-" : "to be set at the post-drill review")",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
