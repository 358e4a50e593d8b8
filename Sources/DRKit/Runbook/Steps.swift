import Archive
import PostgresClient
import ObjectStorage
import Foundation
import Common

/// What one step found: whether it passed, the figure it measured, the rule it was held to, and its
/// captured output (hashed into the audit trail; only the summary is printed).
public struct StepOutcome: Sendable {
    public var passed: Bool
    public var summary: String
    public var figure: String
    public var rule: String
    public var output: String
    public var exitCode: Int?

    public init(passed: Bool, summary: String, figure: String, rule: String, output: String, exitCode: Int? = nil) {
        self.passed = passed
        self.summary = summary
        self.figure = figure
        self.rule = rule
        self.output = output
        self.exitCode = exitCode
    }
}

/// Everything a step may need from the run: the environment for ${VAR}, attestations, the operator.
public struct StepContext: Sendable {
    public var environment: [String: String]
    public var attestations: [String: String]
    public var operatorName: String
    public var interactive: Bool
    public var workingDirectory: String
    public var s3: StorageSettings

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, attestations: [String: String] = [:],
                operatorName: String, interactive: Bool = false,
                workingDirectory: String = FileManager.default.currentDirectoryPath, s3: StorageSettings = .init()) {
        self.environment = environment
        self.attestations = attestations
        self.operatorName = operatorName
        self.interactive = interactive
        self.workingDirectory = workingDirectory
        self.s3 = s3
    }

    func expand(_ text: String?) throws -> String? { try text.map { try Interpolation.expand($0, environment: environment) } }

    /// Secrets in the run's environment, masked in every command's captured output.
    var mask: SecretMask { SecretMask(SecretMask.secrets(ofEnvironment: environment)) }

    func keys(_ step: Checklist.Step) throws -> KeyOptions {
        let keyFile = try expand(step.keyFile).flatMap { $0.isEmpty ? nil : $0 }
        return KeyOptions(keyFile: keyFile, passphraseEnv: step.passphraseEnv, environment: environment)
    }
}

public enum StepExecutor {
    /// Runs one step. Expected failures (a check not passing, an unreachable database) become a failed
    /// outcome with the reason; they are not thrown.
    public static func execute(_ step: Checklist.Step, context: StepContext) -> StepOutcome {
        do {
            switch step.kind {
            case "schema-diff": return try schemaDiff(step, context)
            case "env-check": return try envCheck(step, context)
            case "verify": return try verify(step, context)
            case "parity": return try parity(step, context)
            case "backup-fresh": return try backupFresh(step, context)
            case "command": return try command(step, context)
            case "file-unchanged": return try fileUnchanged(step, context)
            case "attest": return attest(step, context)
            default: throw DRKitError(.usage, "unknown step kind \(step.kind)")
            }
        } catch {
            let wrapped = DRKitError.wrap(error)
            return StepOutcome(passed: false, summary: wrapped.message, figure: "error", rule: rule(for: step),
                               output: wrapped.message, exitCode: Int(wrapped.code.exitCode))
        }
    }

    static func rule(for step: Checklist.Step) -> String {
        switch step.kind {
        case "schema-diff": return "no drift against \(step.snapshot ?? "the snapshot")"
        case "env-check": return "every rule in \(step.rules ?? "the rules file") passes"
        case "verify": return "every object of backup \(step.backup ?? "latest") authenticates and matches the manifest"
        case "parity": return "row counts\(step.checksum == true ? " and checksums" : "") equal on both sides"
        case "backup-fresh": return "latest backup younger than \(step.maxAge ?? "?")"
        case "command": return "exit \(step.expectExit ?? 0)\(step.expectOutput.map { ", output matches /\($0)/" } ?? "")\(step.timeout.map { ", within \($0)" } ?? "")"
        case "file-unchanged": return "\((step.files ?? []).joined(separator: ", ")) unchanged after `\(step.run ?? "")`"
        case "attest": return "confirmed by an operator"
        default: return step.kind
        }
    }

    static func schemaDiff(_ step: Checklist.Step, _ c: StepContext) throws -> StepOutcome {
        let diff = try SchemaSnapshot.diff(conninfo: try c.expand(step.db)!, snapshotPath: try c.expand(step.snapshot)!,
                                           exclude: step.exclude ?? [])
        let destructive = diff.changes.filter(\.destructive).count
        let figure = diff.hasDrift ? "\(diff.changes.count) change(s), \(destructive) destructive" : "no drift"
        return StepOutcome(passed: !diff.hasDrift, summary: diff.hasDrift ? "schema drift: \(figure)" : "live schema matches \(step.snapshot!)",
                           figure: figure, rule: rule(for: step), output: diff.unifiedDiff + diff.summary, exitCode: diff.hasDrift ? 1 : 0)
    }

    static func envCheck(_ step: Checklist.Step, _ c: StepContext) throws -> StepOutcome {
        let rules = try EnvRules.load(path: try c.expand(step.rules)!)
        let files = try (step.envFiles ?? []).map { try c.expand($0)! }
        let (env, sources) = try EnvCheck.environment(files: files, includeProcess: step.includeProcessEnv ?? false, process: c.environment)
        let report = EnvCheck.run(rules, environment: env, sources: sources)
        let failed = report.findings.filter { !$0.passed }
        let output = report.findings.map { "\($0.passed ? "ok" : "FAIL") \($0.rule): \($0.message)" }.joined(separator: "\n")
        return StepOutcome(passed: report.passed,
                           summary: report.passed ? "\(report.findings.count) environment rules pass"
                                                  : failed.map { "\($0.rule): \($0.message)" }.joined(separator: "; "),
                           figure: "\(report.findings.count - failed.count)/\(report.findings.count) rules pass",
                           rule: rule(for: step), output: output, exitCode: report.passed ? 0 : 1)
    }

    static func verify(_ step: Checklist.Step, _ c: StepContext) throws -> StepOutcome {
        let repository = try Repository.open(try c.expand(step.repo)!, create: false, s3: c.s3)
        let report = try VerifyEngine(repository: repository, keys: try c.keys(step), showProgress: false).run(reference: step.backup ?? "latest")
        let output = String(decoding: try JSONCoding.encoder.encode(report), as: UTF8.self)
        return StepOutcome(passed: report.passed,
                           summary: report.passed ? "backup \(report.backupId): \(report.objectsChecked) objects, \(report.rowsChecked) rows verified"
                                                  : "backup \(report.backupId): \(report.failures.count) bad object(s): " + report.failures.prefix(3).map { "\($0.object) \($0.reason)" }.joined(separator: "; "),
                           figure: "\(report.objectsChecked - report.failures.count)/\(report.objectsChecked) objects good",
                           rule: rule(for: step), output: output, exitCode: report.passed ? 0 : 1)
    }

    static func parity(_ step: Checklist.Step, _ c: StepContext) throws -> StepOutcome {
        let source: ParitySide
        if let db = try c.expand(step.source) {
            source = .database(db)
        } else {
            source = .backup(reference: step.sourceBackup!, repository: try Repository.open(try c.expand(step.repo) ?? "", create: false, s3: c.s3),
                             keys: try c.keys(step))
        }
        var options = ParityOptions(source: source, target: .database(try c.expand(step.target)!))
        options.checksum = step.checksum ?? false
        options.include = step.tables ?? []
        options.exclude = step.exclude ?? []
        let report = try ParityEngine(options: options).run()
        let bad = report.mismatches
        return StepOutcome(passed: report.match,
                           summary: report.match ? "all \(report.tables.count) tables match" : "\(bad.count) of \(report.tables.count) tables differ: " + bad.prefix(5).map { "\($0.schema).\($0.table)" }.joined(separator: ", "),
                           figure: "\(report.tables.count - bad.count)/\(report.tables.count) tables match", rule: rule(for: step),
                           output: report.csv(), exitCode: report.match ? 0 : 1)
    }

    static func backupFresh(_ step: Checklist.Step, _ c: StepContext) throws -> StepOutcome {
        let repository = try Repository.open(try c.expand(step.repo)!, create: false, s3: c.s3)
        let limit = Durations.parse(step.maxAge!)!
        let latest = try repository.resolve(step.backup ?? "latest").summary
        let age = Date().timeIntervalSince(latest.snapshotTime)
        let fresh = age <= limit
        return StepOutcome(passed: fresh, summary: "latest backup \(latest.backupId) is \(Format.duration(age)) old (limit \(step.maxAge!))",
                           figure: "age \(Int(age)) s", rule: rule(for: step), output: latest.backupId, exitCode: fresh ? 0 : 1)
    }

    static func command(_ step: Checklist.Step, _ c: StepContext) throws -> StepOutcome {
        let timeout = step.timeout.flatMap(Durations.parse)
        let result = try ShellCommand.run(step.run!, environment: c.environment, workingDirectory: c.workingDirectory, timeout: timeout)
        let expected = step.expectExit ?? 0
        var problems: [String] = []
        if result.timedOut { problems.append("killed after \(step.timeout!) (timeout)") }
        else if Int(result.status) != expected { problems.append("exit \(result.status), expected \(expected)") }
        if let pattern = step.expectOutput, !result.timedOut {
            let matches = (try? NSRegularExpression(pattern: pattern))?.firstMatch(in: result.output, range: NSRange(result.output.startIndex..., in: result.output)) != nil
            if !matches { problems.append("output does not match /\(pattern)/") }
        }
        return StepOutcome(passed: problems.isEmpty,
                           summary: problems.isEmpty ? "`\(step.run!)` exit \(result.status) in \(Format.seconds(result.seconds)) s" : problems.joined(separator: "; "),
                           figure: result.timedOut ? "timeout" : "exit \(result.status)", rule: rule(for: step),
                           output: c.mask.apply(result.output), exitCode: Int(result.status))
    }

    static func fileUnchanged(_ step: Checklist.Step, _ c: StepContext) throws -> StepOutcome {
        let files = try step.files!.map { path -> String in
            let expanded = try c.expand(path)!
            return expanded.hasPrefix("/") ? expanded : c.workingDirectory + "/" + expanded
        }
        let digest = { (path: String) in FileManager.default.contents(atPath: path).map { SHA256.hex([UInt8]($0)) } ?? "missing" }
        let before = files.map(digest)
        let result = try ShellCommand.run(step.run!, environment: c.environment, workingDirectory: c.workingDirectory,
                                          timeout: step.timeout.flatMap(Durations.parse))
        let after = files.map(digest)
        let changed = zip(step.files!, zip(before, after)).filter { $0.1.0 != $0.1.1 }.map(\.0)
        let ok = result.status == 0 && !result.timedOut && changed.isEmpty
        let summary: String
        if result.timedOut { summary = "generator `\(step.run!)` timed out" }
        else if result.status != 0 { summary = "generator `\(step.run!)` failed with exit \(result.status)" }
        else if !changed.isEmpty { summary = "regenerating changed \(changed.joined(separator: ", ")): commit the regenerated file(s) before promoting" }
        else { summary = "\(step.files!.joined(separator: ", ")) unchanged after regeneration" }
        return StepOutcome(passed: ok, summary: summary, figure: "\(changed.count) file(s) changed", rule: rule(for: step),
                           output: c.mask.apply(result.output), exitCode: Int(result.status))
    }

    static func attest(_ step: Checklist.Step, _ c: StepContext) -> StepOutcome {
        let question = step.prompt ?? step.description ?? step.name
        if let note = c.attestations[step.name] {
            return StepOutcome(passed: true, summary: "attested by \(c.operatorName)\(note.isEmpty ? "" : ": \(note)")",
                               figure: "attested", rule: rule(for: step), output: "attested by \(c.operatorName): \(note)", exitCode: 0)
        }
        if c.interactive {
            FileHandle.standardError.write(Data("\(question)\nConfirm as \(c.operatorName)? [y/N] ".utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            let yes = answer == "y" || answer == "yes"
            return StepOutcome(passed: yes, summary: yes ? "confirmed by \(c.operatorName) at the prompt" : "not confirmed by \(c.operatorName)",
                               figure: yes ? "attested" : "declined", rule: rule(for: step),
                               output: "\(c.operatorName) answered \(yes ? "yes" : "no") to: \(question)", exitCode: yes ? 0 : 1)
        }
        return StepOutcome(passed: false, summary: "not attested: pass --attest \(step.name) (or run interactively) to confirm \"\(question)\"",
                           figure: "missing", rule: rule(for: step), output: "no attestation", exitCode: 1)
    }
}
