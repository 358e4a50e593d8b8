import Foundation

/// The drill's Prometheus metrics, labelled by scenario.
public enum DrillMetrics {
    static func samples(_ r: DrillReport) -> [MetricSample] {
        let labels = [("scenario", r.scenario)]
        let finished = r.finishedAt.timeIntervalSince1970.rounded()
        var samples = [
            MetricSample("drkit_drill_success", "Whether the last drill passed (1) or failed (0).", labels: labels, value: r.result == "passed" ? 1 : 0),
            MetricSample("drkit_drill_last_run_timestamp_seconds", "When the last drill finished.", labels: labels, value: finished),
        ]
        if r.result == "passed" {
            samples.append(MetricSample("drkit_drill_last_success_timestamp_seconds", "When the last passing drill finished.", labels: labels, value: finished))
        }
        if let rto = r.rtoSeconds {
            samples.append(MetricSample("drkit_drill_rto_seconds", "Outage start (restore start, or the loss of the primary) to a database that passes smoke checks.",
                                        labels: labels, value: (rto * 1000).rounded() / 1000))
        }
        if let rpo = r.rpoSeconds {
            samples.append(MetricSample("drkit_drill_rpo_seconds", "Age of the restored backup when the outage started.", labels: labels,
                                        value: (rpo * 1000).rounded() / 1000))
        }
        samples.append(MetricSample("drkit_drill_restored_bytes", "Plain bytes of data restored.", labels: labels, value: Double(r.bytes)))
        samples.append(MetricSample("drkit_drill_restored_rows", "Rows restored.", labels: labels, value: Double(r.rows)))
        return samples
    }
}
