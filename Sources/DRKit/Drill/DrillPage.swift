import Archive
import Foundation
import Common

/// The drill record as a page to look at: `drill-record.html`, self-contained (no scripts, fonts or
/// images from elsewhere): the outcome, a timeline with one bar per phase (failures red), the
/// criteria, and, when earlier drills of the same scenario left evidence nearby, RTO and RPO across them.
enum DrillPage {
    struct Point {
        var date: Date
        var rto: Double?
        var rpo: Double?
    }

    static func html(_ r: DrillReport, history: [Point]) -> String {
        let passed = r.result == "passed"
        var body = """
            <h1>Drill \(escape(r.scenario)) <span class="\(passed ? "pass" : "fail")">\(passed ? "PASSED" : "FAILED")</span></h1>
            <p class="meta">\(escape(Timestamps.iso8601(r.startedAt))) · environment \(escape(r.environment)) · run <code>\(escape(r.runId))</code> · backup <code>\(escape(r.backupId ?? "none"))</code> · operator \(escape(r.roles["operator"] ?? "-"))</p>
            <div class="figures">
              <div><b>\(r.rtoSeconds.map { Format.seconds($0) + " s" } ?? "not reached")</b>RTO</div>
              <div><b>\(r.rpoSeconds.map { String(format: "%.1f min", $0 / 60) } ?? "unknown")</b>RPO</div>
              <div><b>\(r.rows)</b>rows restored</div>
              <div><b>\(escape(Format.bytes(r.bytes)))</b>restored</div>
            </div>
            <h2>Timeline</h2>
            \(timeline(r.phases))
            <h2>Criteria</h2>
            <table><tr><th>criterion</th><th>rule</th><th>measured</th><th>result</th></tr>
            \(r.criteria.map { "<tr><td>\(escape($0.name))</td><td>\(escape($0.rule))</td><td>\(escape($0.figure))</td><td class=\"\($0.passed ? "pass" : "fail")\">\($0.passed ? "pass" : "FAIL")</td></tr>" }.joined(separator: "\n"))
            </table>
            """
        if history.count >= 2 {
            body += "<h2>RTO and RPO across drills of \(escape(r.scenario))</h2>\n" + trend(history)
        }
        if let copy = r.copy {
            body += "<p class=\"meta\">Region failover: copied \(copy.objects) objects (\(escape(Format.bytes(copy.bytes)))) from <code>\(escape(copy.from))</code> to <code>\(escape(copy.to))</code> in \(Format.seconds(copy.seconds)) s; restored from <code>\(escape(r.restoredFrom))</code>.</p>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Drill \(escape(r.scenario)) \(escape(Timestamps.iso8601(r.startedAt)))</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:72em}
            h1 span{font-size:.6em;padding:.2em .5em;border-radius:.3em;color:#fff;vertical-align:middle}
            span.pass{background:#2e7d32}span.fail{background:#c62828}td.pass{color:#2e7d32}td.fail{color:#c62828;font-weight:bold}
            .meta{color:#555}.figures{display:flex;gap:2em;margin:1em 0}.figures div{display:flex;flex-direction:column;color:#555}
            .figures b{font-size:1.6em;color:#222}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}
            svg text{font-size:12px;font-family:system-ui,sans-serif}
            </style></head>
            <body>
            \(body)
            </body></html>

            """
    }

    /// One bar per phase, placed by its start and sized by its duration.
    static func timeline(_ phases: [DrillPhase]) -> String {
        let total = max(phases.reduce(0) { $0 + $1.seconds }, 0.001)
        let width = 900.0, label = 110.0, row = 26.0
        var offset = 0.0
        var shapes: [String] = []
        for (index, phase) in phases.enumerated() {
            let y = Double(index) * row + 4
            let x = label + offset / total * (width - label - 80)
            let w = max(phase.seconds / total * (width - label - 80), 2)
            let colour = phase.result == "failed" ? "#c62828" : phase.result == "skipped" ? "#bdbdbd" : "#2e7d32"
            shapes.append("<text x=\"0\" y=\"\(y + 15)\">\(escape(phase.name))</text>")
            shapes.append("<rect x=\"\(String(format: "%.1f", x))\" y=\"\(y)\" width=\"\(String(format: "%.1f", w))\" height=\"18\" fill=\"\(colour)\"><title>\(escape(phase.summary))</title></rect>")
            shapes.append("<text x=\"\(String(format: "%.1f", x + w + 6))\" y=\"\(y + 15)\">\(phase.result == "skipped" ? "skipped" : Format.seconds(phase.seconds) + " s")</text>")
            offset += phase.seconds
        }
        return "<svg role=\"img\" aria-label=\"phase timeline\" width=\"\(Int(width))\" height=\"\(Int(Double(phases.count) * row + 8))\">\(shapes.joined())</svg>"
    }

    /// RTO and RPO (seconds) of each drill, oldest first, as two polylines.
    static func trend(_ points: [Point]) -> String {
        let width = 900.0, height = 220.0, pad = 40.0
        let values = points.flatMap { [$0.rto, $0.rpo].compactMap { $0 } }
        let top = max(values.max() ?? 1, 1)
        func x(_ i: Int) -> Double { pad + Double(i) / Double(max(points.count - 1, 1)) * (width - 2 * pad) }
        func y(_ v: Double) -> Double { height - pad - v / top * (height - 2 * pad) }
        func line(_ pick: (Point) -> Double?, _ colour: String) -> String {
            let coordinates = points.enumerated().compactMap { i, p in pick(p).map { String(format: "%.1f,%.1f", x(i), y($0)) } }
            return "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(coordinates.joined(separator: " "))\"/>"
        }
        let labels = points.enumerated().map { i, p in
            "<text x=\"\(String(format: "%.1f", x(i) - 30))\" y=\"\(Int(height - 10))\">\(Timestamps.iso8601(p.date).prefix(10))</text>"
        }.joined()
        return """
            <svg role="img" aria-label="RTO and RPO trend" width="\(Int(width))" height="\(Int(height))">
            <line x1="\(pad)" y1="\(height - pad)" x2="\(width - pad)" y2="\(height - pad)" stroke="#999"/>
            <text x="0" y="\(Int(pad - 10))">max \(Format.seconds(top)) s</text>
            \(line(\.rto, "#1565c0"))\(line(\.rpo, "#ef6c00"))\(labels)
            <text x="\(Int(width - 160))" y="20" fill="#1565c0">RTO</text><text x="\(Int(width - 110))" y="20" fill="#ef6c00">RPO</text>
            </svg>
            """
    }

    /// evidence.json of earlier drills of the same scenario next to this one (sibling folders, and the
    /// month folders beside its parent: evidence/<yyyy-mm>/drill-<date>), with this drill last.
    static func history(for r: DrillReport, evidenceDirectory: String) -> [Point] {
        let fm = FileManager.default
        let here = URL(fileURLWithPath: evidenceDirectory).standardized
        let parent = here.deletingLastPathComponent(), grandparent = parent.deletingLastPathComponent()
        var candidates: [URL] = []
        for base in [parent, grandparent] {
            for child in (try? fm.contentsOfDirectory(atPath: base.path)) ?? [] {
                let folder = base.appendingPathComponent(child)
                candidates.append(folder.appendingPathComponent("evidence.json"))
                for grandchild in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] {
                    candidates.append(folder.appendingPathComponent(grandchild).appendingPathComponent("evidence.json"))
                }
            }
        }
        var seen = Set<String>()
        var points: [Point] = []
        for file in candidates where file.deletingLastPathComponent().standardized.path != here.path && seen.insert(file.standardized.path).inserted {
            guard let data = fm.contents(atPath: file.path),
                  let earlier = try? JSONCoding.decoder.decode(EarlierDrill.self, from: data), earlier.scenario == r.scenario else { continue }
            points.append(Point(date: earlier.startedAt, rto: earlier.rtoSeconds, rpo: earlier.rpoSeconds))
        }
        points.sort { $0.date < $1.date }
        points.append(Point(date: r.startedAt, rto: r.rtoSeconds, rpo: r.rpoSeconds))
        return points
    }

    /// What the trend needs from an earlier evidence.json (of any drkit version).
    private struct EarlierDrill: Decodable {
        var scenario: String
        var startedAt: Date
        var rtoSeconds: Double?
        var rpoSeconds: Double?
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
