import Foundation
import Common

/// Runs a checklist: steps in order, the first failure of a required step stops the run.
public enum Gate {
    public struct Options: Sendable {
        public var checklistPath: String
        public var evidenceDirectory: String?
        public var context: StepContext
        /// Signs the evidence (minisign) when set.
        public var signingKey: Minisign.SecretKey?
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
            if let key = options.signingKey {
                try EvidenceSignature.sign(directory: directory, chain: .init(kind: "gate", runId: report.runId, audit: audit, backupId: nil, manifestBytes: nil), key: key)
            }
        }
        return report
    }
}
