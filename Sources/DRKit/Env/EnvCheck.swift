import Yams
import Foundation

/// Environment separation rules (manifests/env-separation.yaml). Values are never printed: findings
/// carry masked hints only (a rule-defined prefix and the length, or a URL's host).
public struct EnvRules: Codable, Sendable {
    public struct Rule: Codable, Sendable {
        public var name: String
        /// required | distinct | prefix | host
        public var kind: String
        public var description: String?
        public var variables: [String]?
        /// prefix: the value must start with one of these
        public var prefixes: [String]?
        /// host: the URL's host must not match any of these globs...
        public var forbidHosts: [String]?
        /// ...and, when given, must match one of these
        public var requireHosts: [String]?

        enum CodingKeys: String, CodingKey {
            case name, kind, description, variables, prefixes
            case forbidHosts = "forbid_hosts"
            case requireHosts = "require_hosts"
        }
    }

    public var rules: [Rule]

    public static func load(path: String) throws -> EnvRules {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DRKitError(.usage, "cannot read rules file \(path)")
        }
        let rules: EnvRules
        do { rules = try YAMLDecoder().decode(EnvRules.self, from: text) } catch {
            throw DRKitError(.usage, "rules file \(path) is not valid: \(YAMLErrors.describe(error))")
        }
        for rule in rules.rules {
            guard ["required", "distinct", "prefix", "host"].contains(rule.kind) else {
                throw DRKitError(.usage, "rules file \(path): rule \(rule.name) has unknown kind \"\(rule.kind)\" (required, distinct, prefix, host)")
            }
            guard let variables = rule.variables, !variables.isEmpty else {
                throw DRKitError(.usage, "rules file \(path): rule \(rule.name) lists no variables")
            }
            if rule.kind == "distinct" && variables.count < 2 {
                throw DRKitError(.usage, "rules file \(path): distinct rule \(rule.name) needs at least two variables")
            }
            if rule.kind == "prefix" && (rule.prefixes ?? []).isEmpty {
                throw DRKitError(.usage, "rules file \(path): prefix rule \(rule.name) lists no prefixes")
            }
            if rule.kind == "host" && (rule.forbidHosts ?? []).isEmpty && (rule.requireHosts ?? []).isEmpty {
                throw DRKitError(.usage, "rules file \(path): host rule \(rule.name) needs forbid_hosts or require_hosts")
            }
        }
        return rules
    }
}

public struct EnvFinding: Codable, Sendable {
    public var rule: String
    public var kind: String
    public var passed: Bool
    /// Masked: never contains a value.
    public var message: String
}

public struct EnvCheckReport: Codable, Sendable {
    public var passed: Bool
    public var findings: [EnvFinding]
    public var sources: [String]
}

public enum EnvCheck {
    /// Reads `KEY=VALUE` lines (`export` prefixes, quotes and comments allowed).
    public static func parseEnvFile(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DRKitError(.usage, "cannot read env file \(path)")
        }
        var values: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let eq = line.firstIndex(of: "=") else {
                throw DRKitError(.usage, "env file \(path) line \(number + 1) is not KEY=VALUE")
            }
            let key = String(line[..<eq]).trimmingCharacters(in: .whitespaces)
            var value = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, (first == "\"" || first == "'"), value.last == first {
                value = String(value.dropFirst().dropLast())
            } else if let hash = value.range(of: " #") {
                value = String(value[..<hash.lowerBound]).trimmingCharacters(in: .whitespaces)
            }
            values[key] = value
        }
        return values
    }

    /// Env files in order (later ones win); the process environment only when no file is given or
    /// `includeProcess` is set (files win over it).
    public static func environment(files: [String], includeProcess: Bool,
                                   process: [String: String] = ProcessInfo.processInfo.environment) throws -> ([String: String], [String]) {
        var values: [String: String] = [:]
        var sources: [String] = []
        if files.isEmpty || includeProcess {
            values = process
            sources.append("process environment")
        }
        for file in files {
            values.merge(try parseEnvFile(file)) { $1 }
            sources.append(file)
        }
        return (values, sources)
    }

    public static func run(_ rules: EnvRules, environment env: [String: String], sources: [String]) -> EnvCheckReport {
        let knownPrefixes = rules.rules.flatMap { $0.prefixes ?? [] }
        let hint = { (value: String) in Mask.hint(value, knownPrefixes: knownPrefixes) }
        var findings: [EnvFinding] = []
        for rule in rules.rules {
            let variables = rule.variables ?? []
            let missing = variables.filter { (env[$0] ?? "").isEmpty }
            func finding(_ passed: Bool, _ message: String) {
                findings.append(EnvFinding(rule: rule.name, kind: rule.kind, passed: passed, message: message))
            }
            if !missing.isEmpty {
                finding(false, "\(missing.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") not set or empty")
                continue
            }
            switch rule.kind {
            case "required":
                finding(true, "\(variables.joined(separator: ", ")) set")
            case "distinct":
                var same: [String] = []
                for i in 0..<variables.count {
                    for j in (i + 1)..<variables.count where env[variables[i]] == env[variables[j]] {
                        same.append("\(variables[i]) and \(variables[j]) have the same value (\(hint(env[variables[i]]!)))")
                    }
                }
                finding(same.isEmpty, same.isEmpty ? "\(variables.joined(separator: ", ")) all differ" : same.joined(separator: "; "))
            case "prefix":
                let prefixes = rule.prefixes ?? []
                let bad = variables.filter { v in !prefixes.contains { env[v]!.hasPrefix($0) } }
                finding(bad.isEmpty, bad.isEmpty
                    ? "\(variables.joined(separator: ", ")) start with \(prefixes.joined(separator: " or "))"
                    : bad.map { "\($0) is \(hint(env[$0]!)), must start with \(prefixes.joined(separator: " or "))" }.joined(separator: "; "))
            case "host":
                var problems: [String] = []
                for variable in variables {
                    guard let host = Mask.host(of: env[variable]!) else {
                        problems.append("\(variable) is not a URL with a host (\(hint(env[variable]!)))")
                        continue
                    }
                    if let forbidden = (rule.forbidHosts ?? []).first(where: { Glob.matches($0.lowercased(), host) }) {
                        problems.append("\(variable) points at host \(host), which matches forbidden \(forbidden)")
                    }
                    if let required = rule.requireHosts, !required.isEmpty, !required.contains(where: { Glob.matches($0.lowercased(), host) }) {
                        problems.append("\(variable) points at host \(host), not one of \(required.joined(separator: ", "))")
                    }
                }
                finding(problems.isEmpty, problems.isEmpty ? "\(variables.joined(separator: ", ")) point at allowed hosts" : problems.joined(separator: "; "))
            default:
                break
            }
        }
        return EnvCheckReport(passed: findings.allSatisfy(\.passed), findings: findings, sources: sources)
    }
}
