import XCTest
import Common

final class ChunkedTests: XCTestCase {
    func testSlicesCoverTheArrayInOrderWithAShorterLastOne() {
        XCTAssertEqual(Array(1...7).chunked(by: 3).map(Array.init), [[1, 2, 3], [4, 5, 6], [7]])
        XCTAssertEqual(Array(1...6).chunked(by: 3).map(Array.init), [[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual(Array(1...2).chunked(by: 100).map(Array.init), [[1, 2]])
        XCTAssertTrue([Int]().chunked(by: 3).isEmpty)
    }
}
