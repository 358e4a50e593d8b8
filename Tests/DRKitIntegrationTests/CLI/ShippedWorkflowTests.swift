import XCTest
import Foundation
import TestSupport

/// The GitHub Actions workflow drkit ships passes actionlint (installed by scripts/setup.sh): no
/// deprecated action runtime, no broken expression. A missing actionlint fails, never skips.
final class ShippedWorkflowTests: XCTestCase {
    func testTheShippedWorkflowsPassActionlint() throws {
        let folder = TestServices.packageRoot + "/.github/workflows"
        let workflows = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }
        XCTAssertFalse(workflows.isEmpty)
        let lint = try Command.run("/bin/sh", ["-c", "command -v actionlint >/dev/null || { echo 'actionlint is not installed: run scripts/setup.sh' >&2; exit 127; }; actionlint -no-color " + workflows.map { "'\(folder)/\($0)'" }.joined(separator: " ")])
        XCTAssertEqual(lint.status, 0, lint.stdout + lint.stderr)
    }
}
