import XCTest
@testable import DRKit

/// The drill page's parts by value: escaping, the phase timeline and the RTO/RPO trend.
final class DrillPageTests: XCTestCase {
    func testTextIsEscaped() {
        XCTAssertEqual(DrillPage.escape("<script>alert(\"x\") & 'y'</script>"), "&lt;script&gt;alert(&quot;x&quot;) &amp; 'y'&lt;/script&gt;")
    }

    func testTheTimelineHasABarPerPhaseColouredByResult() {
        let phases = [
            DrillPhase(name: "backup", result: "passed", command: "drkit backup", summary: "ok", seconds: 3),
            DrillPhase(name: "restore", result: "failed", command: "drkit restore", summary: "<boom>", seconds: 1),
            DrillPhase(name: "parity", result: "skipped", command: "drkit parity", summary: "not run", seconds: 0),
        ]
        let svg = DrillPage.timeline(phases)
        XCTAssertEqual(svg.components(separatedBy: "<rect ").count - 1, 3)
        XCTAssertTrue(svg.contains("fill=\"#2e7d32\"") && svg.contains("fill=\"#c62828\"") && svg.contains("fill=\"#bdbdbd\""), svg)
        XCTAssertTrue(svg.contains("&lt;boom&gt;") && !svg.contains("<boom>"), "summaries are escaped")
        XCTAssertTrue(svg.contains(">skipped</text>"))
    }

    func testTheTrendDrawsOneLineEachForRTOAndRPO() {
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let points = (0..<4).map { DrillPage.Point(date: start.addingTimeInterval(Double($0) * 86400 * 7), rto: Double(60 + $0 * 10), rpo: 600) }
        let svg = DrillPage.trend(points)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2, svg)
    }
}
