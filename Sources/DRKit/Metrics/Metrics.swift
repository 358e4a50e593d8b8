import ObjectStorage
import Foundation
import Common

/// One Prometheus gauge sample with its help text.
public struct MetricSample: Sendable, Equatable {
    public var name: String
    public var help: String
    public var labels: [(String, String)]
    public var value: Double

    public init(_ name: String, _ help: String, labels: [(String, String)], value: Double) {
        self.name = name
        self.help = help
        self.labels = labels
        self.value = value
    }

    public static func == (a: MetricSample, b: MetricSample) -> Bool {
        a.name == b.name && a.value == b.value && a.labels.map { $0.0 + "=" + $0.1 } == b.labels.map { $0.0 + "=" + $0.1 }
    }

    /// `name{label="value",...}` with the text format's escaping.
    public var series: String {
        guard !labels.isEmpty else { return name }
        let rendered = labels.map { "\($0.0)=\"\(MetricSample.escape($0.1))\"" }.joined(separator: ",")
        return "\(name){\(rendered)}"
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.6g", value)
    }
}

/// What one command run reports: its samples, and the labels that tell this run's series apart
/// (`command`, `database`, `repository`), which also group it in a Pushgateway.
public struct MetricsReport: Sendable {
    public var command: String
    public var grouping: [(String, String)]
    public var samples: [MetricSample]

    public init(command: String, grouping: [(String, String)], samples: [MetricSample]) {
        self.command = command
        self.grouping = grouping
        self.samples = samples
    }

    /// The Prometheus text exposition format: each metric's samples together under one `# HELP` and
    /// `# TYPE`, in the order the metrics first appear.
    public var text: String {
        var order: [String] = []
        var byName: [String: [MetricSample]] = [:]
        for sample in samples {
            if byName[sample.name] == nil { order.append(sample.name) }
            byName[sample.name, default: []].append(sample)
        }
        var lines: [String] = []
        for name in order {
            let family = byName[name]!
            lines.append("# HELP \(name) \(family[0].help)")
            lines.append("# TYPE \(name) gauge")
            lines += family.map { "\($0.series) \(MetricSample.format($0.value))" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The file name under DRKIT_METRICS_DIR: one file per command and label set.
    public var fileName: String {
        let key = grouping.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        return "drkit_\(command)_\(SHA256.hex(Array(key.utf8)).prefix(12)).prom"
    }
}

/// Where metrics go: a textfile (`--metrics-file`, or one file per command and label set in
/// `DRKIT_METRICS_DIR`, for node_exporter's textfile collector) and/or a Pushgateway
/// (`--pushgateway URL`, job `drkit`). A failed run never erases the last success: its report has no
/// `*_last_success_timestamp_seconds` sample, and the previous one is kept (carried over in a file,
/// left in place by the Pushgateway's POST, which replaces only the metrics it sends).
public struct MetricsPublisher: Sendable {
    public var file: String?
    public var directory: String?
    public var pushgateway: String?

    public init(file: String? = nil, directory: String? = nil, pushgateway: String? = nil) {
        self.file = file
        self.directory = directory.flatMap { $0.isEmpty ? nil : $0 }
        self.pushgateway = pushgateway.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var isEnabled: Bool { file != nil || directory != nil || pushgateway != nil }

    /// Publishes to every destination; a destination that fails is reported, and the others still get it.
    public func publish(_ report: MetricsReport) -> [String] {
        var problems: [String] = []
        for path in [file, directory.map { $0 + "/" + report.fileName }].compactMap({ $0 }) {
            do { try MetricsPublisher.writeFile(report, to: path) } catch { problems.append("metrics file \(path) not written: \(DRKitError.wrap(error).message)") }
        }
        if let pushgateway {
            do { try MetricsPublisher.push(report, to: pushgateway) } catch { problems.append("Pushgateway \(pushgateway): \(error)") }
        }
        return problems
    }

    static let keptAcrossFailures = "_last_success_timestamp_seconds"

    /// Atomically (temporary file, then rename), carrying over last-success samples the new report lacks.
    static func writeFile(_ report: MetricsReport, to path: String) throws {
        var merged = report
        if let previous = try? String(contentsOfFile: path, encoding: .utf8) {
            let present = Set(report.samples.map(\.series))
            for line in previous.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let value = Double(parts[1]) else { continue }
                let series = String(parts[0])
                let name = String(series.prefix { $0 != "{" })
                guard name.hasSuffix(keptAcrossFailures), !present.contains(series),
                      let help = previous.split(separator: "\n").first(where: { $0.hasPrefix("# HELP \(name) ") }) else { continue }
                var sample = MetricSample(name, String(help.dropFirst("# HELP \(name) ".count)), labels: [], value: value)
                sample.labels = parseLabels(series)
                merged.samples.append(sample)
            }
        }
        let temporary = path + ".tmp-\(getpid())"
        let bytes = Array(merged.text.utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DRKitError(.usage, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let writeError = errno
        close(fd)
        guard written == bytes.count else {
            unlink(temporary)
            throw DRKitError(.usage, "cannot write \(temporary): \(written < 0 ? String(cString: strerror(writeError)) : "short write")")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw DRKitError(.usage, "cannot move metrics into \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func parseLabels(_ series: String) -> [(String, String)] {
        guard let open = series.firstIndex(of: "{"), series.hasSuffix("}") else { return [] }
        var labels: [(String, String)] = []
        var rest = series[series.index(after: open)..<series.index(before: series.endIndex)]
        while let equals = rest.firstIndex(of: "=") {
            let key = String(rest[..<equals])
            var value = ""
            var index = rest.index(equals, offsetBy: 2)  // past ="
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\", rest.index(after: index) < rest.endIndex {
                    index = rest.index(after: index)
                    value.append(rest[index] == "n" ? "\n" : rest[index])
                } else {
                    value.append(rest[index])
                }
                index = rest.index(after: index)
            }
            labels.append((key, value))
            rest = index < rest.endIndex ? rest[rest.index(after: index)...].drop { $0 == "," } : ""
        }
        return labels
    }

    /// POST to `/metrics/job/drkit/<label>@base64/<value>...`: replaces this group's metrics of the same
    /// names only, so a failure's push leaves the last success in place.
    static func push(_ report: MetricsReport, to base: String) throws {
        var url = base.hasSuffix("/") ? String(base.dropLast()) : base
        url += "/metrics/job/drkit"
        for (name, value) in [("command", report.command)] + report.grouping {
            let encoded = Data(value.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            url += "/\(name)@base64/\(encoded.isEmpty ? "=" : encoded)"
        }
        // Grouping labels live in the URL; the samples carry the same ones, which the Pushgateway accepts.
        let response = try HTTPClient(timeouts: .init(connect: 5, stall: 10))
            .perform(method: "POST", url: url, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(report.text.utf8))
        guard (200..<300).contains(response.status) else {
            throw DRKitError(.repository, "HTTP \(response.status): \(String(decoding: response.body.prefix(200), as: UTF8.self))")
        }
    }
}
