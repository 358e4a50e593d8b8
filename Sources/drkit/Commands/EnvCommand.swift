import ArgumentParser
import Common
import DRKit
import Foundation

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
