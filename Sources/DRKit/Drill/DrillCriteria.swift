import Foundation

/// The pass/fail rules of a drill, pure: from the phases and figures to the criteria in evidence.json.
enum DrillCriteria {
    struct Figures {
        var phases: [DrillPhase]
        var rto: Double?
        var rpo: Double?
        var parity: ParityReport?
        var parityPassed: Bool?
        var smokePassed: Bool?
        var comparedWithSource: Bool
    }

    static func evaluate(_ f: Figures, scenario: DrillScenario) -> [DrillCriterion] {
        // Smoke and parity failures are judged by their own criteria below, when the scenario asks.
        var criteria = f.phases.filter { $0.result == "failed" && $0.name != "smoke" && $0.name != "parity" }.map {
            DrillCriterion(name: "phase-\($0.name)", rule: "phase \($0.name) completes", figure: "failed", passed: false)
        }
        let c = scenario.criteria
        if let max = c?.maxRtoSeconds {
            criteria.append(DrillCriterion(name: "rto", rule: "RTO <= \(Format.seconds(max)) s", figure: f.rto.map { "\(Format.seconds($0)) s" } ?? "not reached",
                                           passed: (f.rto ?? .infinity) <= max))
        }
        if let max = c?.maxRpoMinutes {
            criteria.append(DrillCriterion(name: "rpo", rule: "RPO <= \(max) min", figure: f.rpo.map { String(format: "%.1f min", $0 / 60) } ?? "unknown",
                                           passed: (f.rpo ?? .infinity) <= max * 60))
        }
        if c?.parityRequired ?? (scenario.toTime == nil) {
            criteria.append(DrillCriterion(name: "parity", rule: "row counts match the \(f.comparedWithSource ? "source" : "backup manifest")",
                                           figure: f.parity.map { "\($0.tables.count - $0.mismatches.count)/\($0.tables.count) tables match" } ?? "not run",
                                           passed: f.parityPassed == true))
        }
        if c?.smokeRequired ?? !(scenario.smoke ?? []).isEmpty {
            criteria.append(DrillCriterion(name: "smoke", rule: "smoke checks pass", figure: f.smokePassed.map { $0 ? "passed" : "failed" } ?? "not run",
                                           passed: f.smokePassed == true))
        }
        return criteria
    }
}
