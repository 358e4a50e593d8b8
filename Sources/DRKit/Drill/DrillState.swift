import Foundation
import PostgresClient

/// What a drill knows: fixed at the start (scenario, repository, scratch database), then filled in
/// by its phases as they run. The criteria and the evidence are computed from it at the end.
final class DrillState {
    let scenario: DrillScenario
    let environment: [String: String]
    let console: Console
    let keys: KeyOptions
    let repository: Repository
    /// nil when the drill restores an existing backup with no live source to compare against.
    let source: String?
    let scratch: String
    let scratchOptions: ConnectionOptions
    let jobs: Int
    /// Applied to everything a phase reports, before it reaches output, logs or evidence.
    let mask: SecretMask

    var backupId: String?
    var snapshotTime: Date?
    var restoreStart: Date?
    var restored = false
    var restoredRows: Int64 = 0
    var restoredBytes: Int64 = 0
    var smokePassed: Bool?
    var smokePassedAt: Date?
    var parity: ParityReport?
    var parityPassed: Bool?
    var scratchDropped = false
    /// A phase that stops the drill failed; later phases that depend on it do not run.
    var stopped = false

    init(scenario: DrillScenario, environment: [String: String], console: Console, keys: KeyOptions, repository: Repository,
         source: String?, scratch: String, scratchOptions: ConnectionOptions, mask: SecretMask) {
        self.scenario = scenario
        self.environment = environment
        self.console = console
        self.keys = keys
        self.repository = repository
        self.source = source
        self.scratch = scratch
        self.scratchOptions = scratchOptions
        self.jobs = scenario.jobs ?? 2
        self.mask = mask
    }

    var scratchConninfo: String { scratchOptions.conninfo }
    var location: String { repository.store.location }
    /// From the start of the restore to passing smoke checks.
    var rto: Double? { restoreStart.flatMap { start in smokePassedAt.map { $0.timeIntervalSince(start) } } }
    /// From the backup's snapshot to the start of the restore: the data a real disaster would lose.
    var rpo: Double? { snapshotTime.flatMap { snapshot in restoreStart.map { $0.timeIntervalSince(snapshot) } } }
}
