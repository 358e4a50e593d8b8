import XCTest
import Foundation
import Archive
import Common
import ObjectStorage
import TestSupport
@testable import DRKit

/// `forget --execute` after every simulated daily backup for 400 days, through the library API (the
/// clock is the backups' own snapshot times): the kept set equals the policy's, on both stores.
final class ForgetSimulationTests: XCTestCase {
    private func simulate(_ repository: Repository, days: Int, forgetEvery: Int) throws {
        var policy = RetentionPolicy()
        (policy.keepDaily, policy.keepWeekly, policy.keepMonthly, policy.keepYearly) = (7, 4, 12, 2)
        let first = Date(timeIntervalSince1970: 1_735_732_800)
        var times: [Date] = []
        for day in 0..<days {
            let time = first.addingTimeInterval(Double(day) * 86400)
            try SyntheticBackup.write(at: time, into: repository)
            times.append(time)
            if day % forgetEvery == forgetEvery - 1 || day == days - 1 {
                _ = try Forget.run(repository: repository, policy: policy, keys: KeyOptions(environment: [:]), execute: true)
            }
        }
        let kept = try repository.backups().map(\.summary.snapshotTime)
        XCTAssertEqual(Set(kept), RetentionOracle.expectedKept(times, daily: 7, weekly: 4, monthly: 12, yearly: 2))
        XCTAssertEqual(kept.count, Set(kept).count)
        let folders = Set(try repository.store.list(prefix: "").map { String($0.key.prefix { $0 != "/" }) }.filter(BackupId.isValid))
        XCTAssertEqual(folders.count, kept.count, "nothing of a removed backup is left")
        let verify = VerifyEngine(repository: repository, keys: KeyOptions(environment: [:]), jobs: 2, showProgress: false, console: .silent())
        for file in try repository.backups() { XCTAssertTrue(try verify.run(reference: file.summary.backupId).passed) }
    }

    func testFourHundredDaysOnALocalRepository() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("forget-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try simulate(try Repository.open(directory.path, create: true), days: 400, forgetEvery: 1)
    }

    func testFourHundredDaysOnS3() throws {
        let s3 = try TestServices.s3()
        var settings = StorageSettings()
        settings.environment = s3.environment()
        let repository = try Repository.open("s3://\(s3.bucket)/forget-\(UUID().uuidString.prefix(8).lowercased())", create: true, s3: settings)
        try simulate(repository, days: 400, forgetEvery: 10)
    }
}
