import Foundation

/// What `drkit drill` flags say, laid over a scenario file (or over nothing: a drill from flags alone).
/// Pure: a flag given wins, a flag left out keeps the file's value.
public struct DrillOverrides: Sendable {
    public var name: String?
    public var repo: String?
    public var source: String?
    public var copyTo: String?
    public var restoreFrom: String?
    public var restoreLatest = false
    public var freshBackup = false
    public var keyFile: String?
    public var passphraseEnv: String?
    public var target: String?
    public var migrate: String?
    public var smokeFiles: [String] = []
    public var maxRtoSeconds: Double?
    public var maxRpoMinutes: Double?
    public var keep = false
    public var environment: String?
    public var jobs: Int?
    public var incidentCommander: String?
    public var observer: String?
    public var operatorName: String?

    public init() {}

    /// `scenario` with these flags applied; with no scenario file, a drill named ad-hoc that takes a
    /// fresh backup when a source is given, else restores the latest one.
    public func applied(to scenario: DrillScenario?) -> DrillScenario {
        var s = scenario ?? DrillScenario(name: "ad-hoc", repo: repo ?? "")
        if let name { s.name = name }
        if let repo { s.repo = repo }
        if let source { s.source = source }
        if let copyTo { s.copyTo = copyTo }
        if let restoreFrom { s.restoreFrom = restoreFrom }
        if restoreLatest { s.backup = "latest" }
        if freshBackup { s.backup = "fresh" }
        if scenario == nil && !restoreLatest && !freshBackup { s.backup = source != nil ? "fresh" : "latest" }
        if let keyFile { s.keyFile = keyFile }
        if let passphraseEnv { s.passphraseEnv = passphraseEnv }
        if let target { s.target = target }
        if let migrate { s.migrate = migrate }
        if !smokeFiles.isEmpty { s.smoke = smokeFiles.map { DrillScenario.Smoke(file: $0) } }
        var criteria = s.criteria ?? DrillScenario.Criteria()
        if let maxRtoSeconds { criteria.maxRtoSeconds = maxRtoSeconds }
        if let maxRpoMinutes { criteria.maxRpoMinutes = maxRpoMinutes }
        s.criteria = criteria
        if keep { s.keep = true }
        if let environment { s.environment = environment }
        if let jobs { s.jobs = jobs }
        var roles = s.roles ?? DrillScenario.Roles()
        if let incidentCommander { roles.ic = incidentCommander }
        if let observer { roles.observer = observer }
        if let operatorName { roles.operator = operatorName }
        s.roles = roles
        return s
    }
}
