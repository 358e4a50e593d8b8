import Foundation
import Common

/// A cluster run's metrics, published per database as each backup commits or fails, so a long
/// `backup --all-databases` shows its progress to monitoring (and each database keeps its own series).
public final class ClusterBackupMetrics: Sendable {
    private let publisher: MetricsPublisher
    private let repository: Repository
    private let started = Locked(Date())

    public init(publisher: MetricsPublisher, repository: Repository) {
        self.publisher = publisher
        self.repository = repository
    }

    /// One database's backup committed; returns the publisher's warnings.
    public func committed(_ backup: BackupResult) -> [String] {
        defer { started.withLock { $0 = Date() } }
        guard publisher.isEnabled else { return [] }
        return publisher.publish(CommandMetrics.backup(database: backup.summary.database, repository: repository.store.location, result: backup,
                                                       startedAt: started.current, finishedAt: Date(),
                                                       inventory: (try? repository.backups())?.map(\.summary)))
    }

    /// The databases whose backup failed; returns the publisher's warnings.
    public func failed(_ databases: [String]) -> [String] {
        guard publisher.isEnabled else { return [] }
        return databases.flatMap { database in
            publisher.publish(CommandMetrics.backup(database: database, repository: repository.store.location, result: nil,
                                                    startedAt: started.current, finishedAt: Date(), inventory: nil))
        }
    }
}
