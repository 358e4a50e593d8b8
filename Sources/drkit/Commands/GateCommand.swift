import ArgumentParser
import Common
import DRKit
import Foundation

struct Gate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a promotion or cutover checklist: steps in order, stop at the first failure, every step audited.",
        discussion: "Step kinds: schema-diff, env-check, verify, parity, backup-fresh, command, file-unchanged, attest. ${VAR} in step fields comes from the environment. Writes evidence.json and gate-record.md to --evidence-dir; with --signing-key also signs them (a .minisig per file, SHA256SUMS, evidence-chain.json; `drkit evidence verify`). Exit codes: 0 passed (advisory failures allowed), 1 a required step failed, 2 the checklist or options are invalid.")

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

    @OptionGroup var metrics: MetricsFlags
    @OptionGroup var signing: SigningFlags

    func validate() throws {
        if signing.signingKey != nil && evidenceDir == nil { throw ValidationError("--signing-key signs the evidence: give --evidence-dir too") }
    }

    func run() throws {
        try runWithCheckExitCodes {
            let list = try Checklist.load(path: checklist)
            if dryRun {
                Console.shared.output(DRKit.Gate.plan(list))
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
            var options = DRKit.Gate.Options(checklistPath: checklist, evidenceDirectory: evidenceDir, context: context)
            options.signingKey = evidenceDir == nil ? nil : try signing.load()
            let auditStore = try audit.open()
            let report = try metrics.reporting({ (report: GateReport?, started, finished) in
                CommandMetrics.gate(checklist: report?.checklist ?? checklist, report: report, startedAt: started, finishedAt: finished)
            }) {
                try DRKit.Gate.run(list, options: options,
                                   audit: auditStore, console: json ? Console(outputToStderr: true) : .shared)
            }
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
