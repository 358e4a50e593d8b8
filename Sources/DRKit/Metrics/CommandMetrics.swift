import Archive
import PostgresClient
import Foundation

/// The metrics each command reports (docs/monitoring.md lists them all). Every series carries
/// `database` and `repository` (the repository's location, which never holds credentials). A failed
/// run reports `*_success 0` and its run time, never a last-success time.
public enum CommandMetrics {
    /// The database a conninfo names, for labels (also when the run failed before connecting).
    public static func databaseLabel(_ conninfo: String) -> String {
        (try? ConnectionOptions(conninfo))?["dbname"] ?? "unknown"
    }

    static func outcome(_ command: String, _ what: String, succeeded: Bool, finishedAt: Date, duration: Double,
                        labels: [(String, String)]) -> [MetricSample] {
        var samples = [
            MetricSample("drkit_\(command)_success", "Whether the last \(what) succeeded (1) or failed (0).", labels: labels, value: succeeded ? 1 : 0),
            MetricSample("drkit_\(command)_last_run_timestamp_seconds", "When the last \(what) finished, successful or not.", labels: labels,
                         value: finishedAt.timeIntervalSince1970.rounded()),
            MetricSample("drkit_\(command)_duration_seconds", "How long the last \(what) took.", labels: labels, value: (duration * 1000).rounded() / 1000),
        ]
        if succeeded {
            samples.append(MetricSample("drkit_\(command)_last_success_timestamp_seconds", "When the last successful \(what) finished.",
                                        labels: labels, value: finishedAt.timeIntervalSince1970.rounded()))
        }
        return samples
    }

    /// Backups in the repository per database and the oldest one's snapshot time (from the summaries).
    public static func inventory(_ summaries: [BackupSummary], database: String, repository: String) -> [MetricSample] {
        let mine = summaries.filter { $0.database == database }
        let labels = [("database", database), ("repository", repository)]
        var samples = [MetricSample("drkit_repository_backups", "Completed backups of this database in the repository.", labels: labels, value: Double(mine.count))]
        if let oldest = mine.map(\.snapshotTime).min() {
            samples.append(MetricSample("drkit_repository_oldest_backup_timestamp_seconds", "Snapshot time of the oldest backup of this database in the repository.",
                                        labels: labels, value: oldest.timeIntervalSince1970.rounded()))
        }
        return samples
    }

    public static func backup(database: String, repository: String, result: BackupResult?, startedAt: Date, finishedAt: Date,
                              inventory summaries: [BackupSummary]?) -> MetricsReport {
        let labels = [("database", database), ("repository", repository)]
        var samples = outcome("backup", "backup", succeeded: result != nil, finishedAt: finishedAt,
                              duration: finishedAt.timeIntervalSince(startedAt), labels: labels)
        if let result {
            samples.append(MetricSample("drkit_backup_stored_bytes", "Bytes the last successful backup stored (compressed, encrypted).", labels: labels,
                                        value: Double(result.summary.storedBytes)))
            samples.append(MetricSample("drkit_backup_rows", "Rows in the last successful backup.", labels: labels,
                                        value: Double(result.manifest.tables.reduce(0) { $0 + $1.rows })))
        }
        if let summaries { samples += inventory(summaries, database: database, repository: repository) }
        if let shrinkage = result?.manifest.shrinkage {
            samples.append(MetricSample("drkit_backup_rows_change_ratio", "Rows in the last backup divided by rows in the previous backup of the database (1 = unchanged).",
                                        labels: labels, value: (shrinkage.rowsRatio * 10000).rounded() / 10000))
            samples.append(MetricSample("drkit_backup_size_change_ratio", "Stored bytes of the last backup divided by the previous one's.",
                                        labels: labels, value: (shrinkage.sizeRatio * 10000).rounded() / 10000))
            samples.append(MetricSample("drkit_backup_shrunk_tables", "Tables that lost more than the --warn-shrink fraction since the previous backup.",
                                        labels: labels, value: Double(shrinkage.tables.count)))
        }
        return MetricsReport(command: "backup", grouping: labels, samples: samples)
    }

    public static func verify(database: String, repository: String, report: VerifyReport?, startedAt: Date, finishedAt: Date) -> MetricsReport {
        let labels = [("database", database), ("repository", repository)]
        var samples = outcome("verify", "verify", succeeded: report?.passed ?? false, finishedAt: finishedAt,
                              duration: finishedAt.timeIntervalSince(startedAt), labels: labels)
        if let report {
            samples.append(MetricSample("drkit_verify_objects_checked", "Objects the last verify read back.", labels: labels, value: Double(report.objectsChecked)))
            samples.append(MetricSample("drkit_verify_bad_objects", "Objects the last verify found bad.", labels: labels, value: Double(report.failures.count)))
        }
        return MetricsReport(command: "verify", grouping: labels, samples: samples)
    }

    /// Per repository (forget decides per database, but runs once per repository).
    public static func forget(repository: String, report: Forget.Report?, startedAt: Date, finishedAt: Date) -> MetricsReport {
        let labels = [("repository", repository)]
        var samples = outcome("forget", "forget", succeeded: report != nil, finishedAt: finishedAt,
                              duration: finishedAt.timeIntervalSince(startedAt), labels: labels)
        if let report {
            samples.append(MetricSample("drkit_forget_kept", "Backups the last forget kept.", labels: labels, value: Double(report.kept.count)))
            samples.append(MetricSample("drkit_forget_removed", "Backups the last forget removed (or would remove, in a dry run).", labels: labels,
                                        value: Double(report.removed.count)))
        }
        return MetricsReport(command: "forget", grouping: labels, samples: samples)
    }

    public static func copy(from: String, to: String, report: RepositoryCopy.Report?, startedAt: Date, finishedAt: Date) -> MetricsReport {
        let labels = [("repository", to), ("source", from)]
        var samples = outcome("copy", "copy", succeeded: report.map { $0.failures.isEmpty } ?? false, finishedAt: finishedAt,
                              duration: finishedAt.timeIntervalSince(startedAt), labels: labels)
        if let report {
            samples.append(MetricSample("drkit_copy_objects", "Objects the last copy transferred.", labels: labels, value: Double(report.objectsCopied)))
            samples.append(MetricSample("drkit_copy_bytes", "Bytes the last copy transferred.", labels: labels, value: Double(report.bytesCopied)))
            samples.append(MetricSample("drkit_copy_failed_backups", "Backups the last copy could not copy.", labels: labels, value: Double(report.failures.count)))
        }
        return MetricsReport(command: "copy", grouping: labels, samples: samples)
    }
}

extension CommandMetrics {
    public static func gate(checklist: String, report: GateReport?, startedAt: Date, finishedAt: Date) -> MetricsReport {
        let labels = [("checklist", checklist)]
        var samples = outcome("gate", "gate run", succeeded: report?.result == "passed", finishedAt: finishedAt,
                              duration: finishedAt.timeIntervalSince(startedAt), labels: labels)
        if let report {
            samples.append(MetricSample("drkit_gate_failed_steps", "Steps of the last gate run that failed (it stops at the first).", labels: labels,
                                        value: Double(report.steps.filter { $0.result == "failed" }.count)))
        }
        return MetricsReport(command: "gate", grouping: labels, samples: samples)
    }

    public static func parity(database: String, report: ParityReport?, startedAt: Date, finishedAt: Date) -> MetricsReport {
        let labels = [("database", database)]
        var samples = outcome("parity", "parity check", succeeded: report?.match ?? false, finishedAt: finishedAt,
                              duration: finishedAt.timeIntervalSince(startedAt), labels: labels)
        if let report {
            samples.append(MetricSample("drkit_parity_mismatched_tables", "Tables whose rows (or checksums) differed in the last parity check.",
                                        labels: labels, value: Double(report.mismatches.count)))
        }
        return MetricsReport(command: "parity", grouping: labels, samples: samples)
    }

    /// `success` means no drift.
    public static func schemaDiff(database: String, snapshot: String, diff: SchemaDiff?, startedAt: Date, finishedAt: Date) -> MetricsReport {
        let labels = [("database", database), ("snapshot", snapshot)]
        var samples = outcome("schema_diff", "schema diff (no drift)", succeeded: diff.map { !$0.hasDrift } ?? false, finishedAt: finishedAt,
                              duration: finishedAt.timeIntervalSince(startedAt), labels: labels)
        if let diff {
            samples.append(MetricSample("drkit_schema_diff_changes", "Object changes the last schema diff found against the snapshot.",
                                        labels: labels, value: Double(diff.changes.count)))
            samples.append(MetricSample("drkit_schema_diff_destructive_changes", "Destructive changes among them.", labels: labels,
                                        value: Double(diff.changes.filter(\.destructive).count)))
        }
        return MetricsReport(command: "schema_diff", grouping: labels, samples: samples)
    }

    /// The drill's metrics (DrillMetrics) as a report, so that a drill publishes like every command.
    public static func drill(_ report: DrillReport) -> MetricsReport {
        MetricsReport(command: "drill", grouping: [("scenario", report.scenario)], samples: DrillMetrics.samples(report))
    }
}
