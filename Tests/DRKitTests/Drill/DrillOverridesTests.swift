import XCTest
@testable import DRKit

/// `drkit drill` flags over a scenario file, by value.
final class DrillOverridesTests: XCTestCase {
    func testFlagsWinAndWhatIsLeftOutKeepsTheFilesValue() {
        var file = DrillScenario(name: "quarterly", repo: "s3://b/prod")
        file.backup = "latest"
        file.migrate = "make migrate"
        var criteria = DrillScenario.Criteria()
        criteria.maxRtoSeconds = 900
        criteria.maxRpoMinutes = 60
        file.criteria = criteria
        var roles = DrillScenario.Roles()
        roles.ic = "dana"
        file.roles = roles

        var flags = DrillOverrides()
        flags.maxRpoMinutes = 5
        flags.freshBackup = true
        flags.observer = "lee"
        flags.smokeFiles = ["smoke/a.sql"]
        let merged = flags.applied(to: file)
        XCTAssertEqual(merged.name, "quarterly")
        XCTAssertEqual(merged.repo, "s3://b/prod")
        XCTAssertEqual(merged.backup, "fresh")
        XCTAssertEqual(merged.migrate, "make migrate")
        XCTAssertEqual(merged.criteria?.maxRtoSeconds, 900)
        XCTAssertEqual(merged.criteria?.maxRpoMinutes, 5)
        XCTAssertEqual(merged.roles?.ic, "dana")
        XCTAssertEqual(merged.roles?.observer, "lee")
        XCTAssertEqual(merged.smoke?.map(\.file), ["smoke/a.sql"])
        XCTAssertEqual(DrillOverrides().applied(to: file).backup, "latest", "no flag, the file's choice")
    }

    func testFlagsAloneMakeAnAdHocDrill() {
        var flags = DrillOverrides()
        flags.repo = "/srv/backups"
        XCTAssertEqual(flags.applied(to: nil).name, "ad-hoc")
        XCTAssertEqual(flags.applied(to: nil).backup, "latest", "no source: restore the latest backup")
        flags.source = "host=db dbname=app"
        XCTAssertEqual(flags.applied(to: nil).backup, "fresh", "a source: take a fresh backup")
        flags.restoreLatest = true
        XCTAssertEqual(flags.applied(to: nil).backup, "latest")
    }
}
