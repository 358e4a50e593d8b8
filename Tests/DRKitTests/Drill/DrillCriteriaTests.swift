import XCTest
@testable import DRKit

/// The drill's rules and its phase table, checked by value.
final class DrillCriteriaTests: XCTestCase {
    private func phase(_ name: String, _ result: String) -> DrillPhase {
        DrillPhase(name: name, result: result, command: "-", summary: "", seconds: 1)
    }

    func testPhasesRunInTheDocumentedOrder() {
        XCTAssertEqual(DrillStep.all.map(\.name), ["backup", "copy", "verify", "restore", "migrate", "smoke", "parity", "teardown"])
        XCTAssertEqual(DrillStep.all.filter(\.stopsOnFailure).map(\.name), ["backup", "copy", "verify", "restore", "migrate"],
                       "smoke, parity and teardown never stop what follows")
    }

    func testRTOAndRPOLimitsAndRequiredChecks() {
        var scenario = DrillScenario(name: "t", repo: "/r")
        var limits = DrillScenario.Criteria()
        limits.maxRtoSeconds = 60
        limits.maxRpoMinutes = 30
        scenario.criteria = limits
        scenario.smoke = [.init(sql: "SELECT true")]
        let good = DrillCriteria.Figures(phases: [phase("restore", "passed"), phase("smoke", "passed")], rto: 42, rpo: 600,
                                         parity: nil, parityPassed: true, smokePassed: true, comparedWithSource: true)
        let judged = DrillCriteria.evaluate(good, scenario: scenario)
        XCTAssertEqual(judged.map(\.name), ["rto", "rpo", "parity", "smoke"])
        XCTAssertTrue(judged.allSatisfy(\.passed), "\(judged)")
        XCTAssertEqual(judged.first { $0.name == "rpo" }?.figure, "10.0 min")

        var slow = good
        slow.rto = 61
        slow.rpo = nil
        slow.smokePassed = false
        slow.phases.append(phase("migrate", "failed"))
        slow.phases.append(phase("parity", "failed"))
        let failed = DrillCriteria.evaluate(slow, scenario: scenario).filter { !$0.passed }.map(\.name)
        XCTAssertEqual(failed, ["phase-migrate", "rto", "rpo", "smoke"], "a failed parity phase is judged by parityPassed alone")
        XCTAssertEqual(DrillCriteria.evaluate(slow, scenario: scenario).first { $0.name == "rpo" }?.figure, "unknown")
    }

    func testParityAgainstTheManifestWhenTheSourceIsGoneAndOptionalChecks() {
        var scenario = DrillScenario(name: "t", repo: "/r")
        var rules = DrillScenario.Criteria()
        rules.parityRequired = false
        scenario.criteria = rules
        let figures = DrillCriteria.Figures(phases: [], rto: nil, rpo: nil, parity: nil, parityPassed: nil, smokePassed: nil, comparedWithSource: false)
        XCTAssertEqual(DrillCriteria.evaluate(figures, scenario: scenario).map(\.name), [], "no smoke checks, parity not required: nothing to judge")
        scenario.criteria = nil
        let parity = DrillCriteria.evaluate(figures, scenario: scenario)
        XCTAssertEqual(parity.map(\.rule), ["row counts match the backup manifest"])
        XCTAssertFalse(parity[0].passed, "parity that never ran fails when required")
    }
}
