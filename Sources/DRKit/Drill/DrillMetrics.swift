import Foundation
import ObjectStorage
import Archive
import Common
import PostgresClient

/// Prometheus text format for a node_exporter textfile collector.
public enum DrillMetrics {
    public static func prometheus(_ r: DrillReport) -> String {
        let label = "scenario=\"\(r.scenario.replacingOccurrences(of: "\"", with: "\\\""))\""
        var lines = [
            "# HELP drkit_drill_success Whether the last drill passed (1) or failed (0).",
            "# TYPE drkit_drill_success gauge",
            "drkit_drill_success{\(label)} \(r.result == "passed" ? 1 : 0)",
            "# HELP drkit_drill_last_run_timestamp_seconds When the last drill finished.",
            "# TYPE drkit_drill_last_run_timestamp_seconds gauge",
            "drkit_drill_last_run_timestamp_seconds{\(label)} \(Int(r.finishedAt.timeIntervalSince1970))",
        ]
        if r.result == "passed" {
            lines += ["# HELP drkit_drill_last_success_timestamp_seconds When the last passing drill finished.",
                      "# TYPE drkit_drill_last_success_timestamp_seconds gauge",
                      "drkit_drill_last_success_timestamp_seconds{\(label)} \(Int(r.finishedAt.timeIntervalSince1970))"]
        }
        if let rto = r.rtoSeconds {
            lines += ["# HELP drkit_drill_rto_seconds Restore start to a database that passes smoke checks.",
                      "# TYPE drkit_drill_rto_seconds gauge", "drkit_drill_rto_seconds{\(label)} \(String(format: "%.3f", rto))"]
        }
        if let rpo = r.rpoSeconds {
            lines += ["# HELP drkit_drill_rpo_seconds Age of the restored backup when the restore started.",
                      "# TYPE drkit_drill_rpo_seconds gauge", "drkit_drill_rpo_seconds{\(label)} \(String(format: "%.3f", rpo))"]
        }
        lines += ["# HELP drkit_drill_restored_bytes Plain bytes of data restored.", "# TYPE drkit_drill_restored_bytes gauge",
                  "drkit_drill_restored_bytes{\(label)} \(r.bytes)",
                  "# HELP drkit_drill_restored_rows Rows restored.", "# TYPE drkit_drill_restored_rows gauge",
                  "drkit_drill_restored_rows{\(label)} \(r.rows)"]
        return lines.joined(separator: "\n") + "\n"
    }
}
