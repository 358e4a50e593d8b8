import PostgresClient
import ObjectStorage
import Foundation

/// What a drill knows: fixed at the start (scenario, repository, scratch database), then filled in
/// by its phases as they run. The criteria and the evidence are computed from it at the end.
final class DrillState {
    let scenario: DrillScenario
    let environment: [String: String]
    let console: Console
    let keys: KeyOptions
    /// The primary repository: the backup goes here, the copy reads it.
    let repository: Repository
    /// Where the copy goes (region failover).
    let copyRepository: Repository?
    /// Where verify, restore and parity read: the primary, or the second region in a failover drill.
    let restoreRepository: Repository
    /// Makes the primary unreadable once the failover begins.
    let primaryFence: FencedStore?
    /// nil when the drill restores an existing backup with no live source to compare against.
    let source: String?
    let scratch: String
    let scratchOptions: ConnectionOptions
    let jobs: Int
    /// Applied to everything a phase reports, before it reaches output, logs or evidence.
    let mask: SecretMask

    var backupId: String?
    var copy: DrillCopy?
    /// When the drill started acting as if the primary region were gone (right after the copy).
    var primaryLostAt: Date?
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

    init(scenario: DrillScenario, environment: [String: String], console: Console, keys: KeyOptions, repositories: DrillRepositories,
         source: String?, scratch: String, scratchOptions: ConnectionOptions, mask: SecretMask) {
        self.scenario = scenario
        self.environment = environment
        self.console = console
        self.keys = keys
        self.repository = repositories.primary
        self.copyRepository = repositories.copy
        self.restoreRepository = repositories.restore
        self.primaryFence = repositories.fence
        self.source = source
        self.scratch = scratch
        self.scratchOptions = scratchOptions
        self.jobs = scenario.jobs ?? 2
        self.mask = mask
    }

    var scratchConninfo: String { scratchOptions.conninfo }
    var location: String { repository.store.location }
    var restoreLocation: String { restoreRepository.store.location }
    /// When the outage starts: the primary lost (failover drill), else the start of the restore.
    var outageStart: Date? { primaryLostAt ?? restoreStart }
    /// From the outage to passing smoke checks.
    var rto: Double? { outageStart.flatMap { start in smokePassedAt.map { $0.timeIntervalSince(start) } } }
    /// The newest commit in the change archive of the database, when a stream archives it.
    var archivedUntil: Date?
    /// From the last recoverable moment to the outage: the data a real disaster would lose. That moment is
    /// the backup's snapshot (a standby's backup: its last replayed commit), or the newest archived
    /// commit when `drkit stream` archives the database.
    var rpo: Double? {
        let recoverable = [snapshotTime, archivedUntil].compactMap { $0 }.max()
        return recoverable.flatMap { point in outageStart.map { $0.timeIntervalSince(point) } }
    }
}

/// The repositories a drill uses: one, or a primary and a second region.
struct DrillRepositories {
    var primary: Repository
    var copy: Repository?
    var restore: Repository
    var fence: FencedStore?

    /// `copy_to` and `restore_from` open their own repositories; the primary is fenced when there is a
    /// second region, so that the drill proves it never needs the primary after the copy.
    static func open(_ scenario: DrillScenario, expand: (String?) throws -> String?, settings: StorageSettings) throws -> DrillRepositories {
        let copyTo = try expand(scenario.copyTo).flatMap { $0.isEmpty ? nil : $0 }
        let restoreFrom = try expand(scenario.restoreFrom).flatMap { $0.isEmpty ? nil : $0 } ?? copyTo
        let primaryLocation = try expand(scenario.repo)!
        let primaryStore = try Repository.open(primaryLocation, create: true, s3: settings).store
        guard let restoreFrom else {
            let primary = Repository(store: primaryStore)
            return DrillRepositories(primary: primary, copy: nil, restore: primary, fence: nil)
        }
        let fence = FencedStore(primaryStore)
        let primary = Repository(store: fence)
        let copy = try copyTo.map { try Repository.open($0, create: true, s3: settings) }
        let restore = switch restoreFrom {
        case copyTo: copy!
        case primaryLocation: primary  // fenced after the copy: the drill fails, as it would in a real outage
        default: try Repository.open(restoreFrom, create: false, s3: settings)
        }
        return DrillRepositories(primary: primary, copy: copy, restore: restore, fence: fence)
    }
}

/// The copy phase's figures, for the evidence.
public struct DrillCopy: Codable, Sendable {
    public var from: String
    public var to: String
    public var seconds: Double
    public var objects: Int
    public var bytes: Int64
    /// Every object's size and SHA-256 matched the manifest before it was committed at `to`.
    public var objectsHashChecked: Bool
}
