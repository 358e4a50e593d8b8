import Foundation
import Common

/// Where drkit writes human-facing output. Results go to stdout; progress and notes go to stderr
/// so that `--json` output and `drkit cat` stay clean.
public final class Console: Sendable {
    public static let shared = Console()
    public let stderrIsTerminal = isatty(STDERR_FILENO) == 1
    /// Settings and the status-line flag; writes happen under the same lock, so lines never interleave.
    private let state: Locked<State>

    private struct State {
        var quiet: Bool
        /// Writes nothing at all (for recording through code that also prints).
        var silent = false
        var outputToStderr: Bool
        var logSink: (@Sendable (String) -> Void)?
        var statusLineShown = false
    }

    public init(quiet: Bool = false, outputToStderr: Bool = false) {
        state = Locked(State(quiet: quiet, outputToStderr: outputToStderr))
    }

    /// A console that writes nothing.
    public static func silent() -> Console {
        let console = Console(quiet: true)
        console.state.withLock { $0.silent = true }
        return console
    }

    public var quiet: Bool {
        get { state.current.quiet }
        set { state.withLock { $0.quiet = newValue } }
    }

    /// Send `output` lines to stderr too, so that stdout carries only a JSON report.
    public var outputToStderr: Bool {
        get { state.current.outputToStderr }
        set { state.withLock { $0.outputToStderr = newValue } }
    }

    /// Lines also appended here (the run's log), when set.
    public var logSink: (@Sendable (String) -> Void)? {
        get { state.current.logSink }
        set { state.withLock { $0.logSink = newValue } }
    }

    public func note(_ line: String) {
        state.withLock { s in
            Console.clearStatus(&s)
            s.logSink?(line)
            guard !s.quiet else { return }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    public func output(_ text: String) {
        state.withLock { s in
            guard !s.silent else { return }
            Console.clearStatus(&s)
            let data = Data((text.hasSuffix("\n") ? text : text + "\n").utf8)
            (s.outputToStderr ? FileHandle.standardError : FileHandle.standardOutput).write(data)
        }
    }

    /// A progress line: redrawn in place on a terminal, a plain line otherwise.
    public func status(_ line: String) {
        state.withLock { s in
            s.logSink?(line)
            guard !s.quiet else { return }
            if stderrIsTerminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8))
                s.statusLineShown = true
            } else {
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }
    }

    public func endStatus() {
        state.withLock { Console.clearStatus(&$0) }
    }

    private static func clearStatus(_ s: inout State) {
        if s.statusLineShown {
            FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
            s.statusLineShown = false
        }
    }
}

/// Counts work done and prints it periodically: every second on a terminal, every 10 s otherwise.
public final class ProgressReporter: Sendable {
    private let label: String
    private let totalBytes: Int64
    private let counters = Locked((bytes: Int64(0), rows: Int64(0), objects: 0, estimatedDone: Int64(0)))
    private let start = Date()
    private let timer = Locked<DispatchSourceTimer?>(nil)
    private let totalObjects: Int
    private let countsRows: Bool

    /// `totalBytes` is an estimate of the work in the units passed to `objectDone(estimate:)`.
    public init(label: String, totalBytes: Int64, totalObjects: Int, countsRows: Bool = true) {
        self.label = label
        self.totalBytes = totalBytes
        self.totalObjects = totalObjects
        self.countsRows = countsRows
    }

    public func start(console: Console = .shared) {
        let interval: Double = console.stderrIsTerminal ? 1 : 10
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            console.status(self.line())
        }
        timer.resume()
        self.timer.withLock { $0 = timer }
    }

    public func stop(console: Console = .shared) {
        timer.withLock {
            $0?.cancel()
            $0 = nil
        }
        console.endStatus()
    }

    public func add(bytes: Int64, rows: Int64) {
        counters.withLock { $0.bytes += bytes; $0.rows += rows }
    }

    public func objectDone(estimate: Int64) {
        counters.withLock { $0.objects += 1; $0.estimatedDone += estimate }
    }

    func line() -> String {
        let c = counters.current
        let elapsed = max(Date().timeIntervalSince(start), 0.001)
        let rate = Double(c.bytes) / elapsed
        var text = "\(label): \(Format.bytes(c.bytes))\(countsRows ? ", \(Format.count(c.rows)) rows" : ""), \(Format.bytes(Int64(rate)))/s, objects \(c.objects)/\(totalObjects)"
        if totalBytes > 0 && c.estimatedDone > 0 && c.estimatedDone < totalBytes {
            let fraction = Double(c.estimatedDone) / Double(totalBytes)
            text += ", ETA \(Format.duration(elapsed / fraction - elapsed))"
        }
        return text
    }
}

public enum Format {
    public static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    public static func count(_ n: Int64) -> String {
        if n >= 1_000_000 { return String(format: "%.2fM", Double(n) / 1_000_000) }
        if n >= 10_000 { return String(format: "%.1fk", Double(n) / 1_000) }
        return "\(n)"
    }

    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return String(format: "%.1fs", seconds) }
        return String(format: "%d:%02d", s / 60, s % 60)
    }

    public static func seconds(_ seconds: Double) -> String { String(format: "%.2f", seconds) }
}
