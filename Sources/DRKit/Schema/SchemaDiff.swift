import Foundation

public struct SchemaChange: Codable, Equatable, Sendable {
    public enum Change: String, Codable, Sendable { case added, removed, changed, reordered }
    public var change: Change
    public var kind: SchemaObject.Kind
    public var name: String
    public var detail: String
    /// Loses data or breaks readers: a dropped table or column, a narrowed column type.
    public var destructive: Bool
}

extension SchemaObject.Kind: Comparable {
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Compares a committed snapshot (expected) with the live schema; "added" means present live only.
public struct SchemaDiff: Sendable {
    public var unifiedDiff: String
    public var changes: [SchemaChange]
    public var hasDrift: Bool { !unifiedDiff.isEmpty }

    public init(snapshot: SchemaText, live: SchemaText, snapshotLabel: String, liveLabel: String) {
        unifiedDiff = UnifiedDiff.render(old: snapshot.normalized, new: live.normalized,
                                         oldLabel: snapshotLabel, newLabel: liveLabel)
        changes = SchemaDiff.objectChanges(snapshot: snapshot, live: live)
    }

    static func objectChanges(snapshot: SchemaText, live: SchemaText) -> [SchemaChange] {
        func index(_ text: SchemaText) -> [String: SchemaText.Statement] {
            var out: [String: SchemaText.Statement] = [:]
            for s in text.statements {
                let key = s.object.kind == .other ? "other|\(s.text)" : "\(s.object.kind.rawValue)|\(s.object.name)"
                out[key] = s
            }
            return out
        }
        let old = index(snapshot), new = index(live)
        var changes: [SchemaChange] = []
        for key in Set(old.keys).union(new.keys).sorted() {
            let o = old[key], n = new[key]
            let object = (o ?? n)!.object
            switch (o, n) {
            case (nil, _):
                changes.append(.init(change: .added, kind: object.kind, name: object.name, detail: "added", destructive: false))
            case (_, nil):
                changes.append(.init(change: .removed, kind: object.kind, name: object.name, detail: "removed",
                                     destructive: object.kind == .table))
            case let (o?, n?) where o.text != n.text:
                if object.kind == .table {
                    changes += tableChanges(object.name, old: o.text, new: n.text)
                } else {
                    changes.append(.init(change: .changed, kind: object.kind, name: object.name, detail: "definition changed", destructive: false))
                }
            default:
                break
            }
        }
        return changes
    }

    static func tableChanges(_ table: String, old: String, new: String) -> [SchemaChange] {
        let before = TableColumns(old).columns, after = TableColumns(new).columns
        let beforeNames = before.map(\.name), afterNames = after.map(\.name)
        var changes: [SchemaChange] = []
        for column in before where !afterNames.contains(column.name) {
            changes.append(.init(change: .removed, kind: .column, name: "\(table).\(column.name)", detail: "column dropped", destructive: true))
        }
        for column in after where !beforeNames.contains(column.name) {
            changes.append(.init(change: .added, kind: .column, name: "\(table).\(column.name)", detail: "column added: \(column.definition)", destructive: false))
        }
        for column in after {
            guard let previous = before.first(where: { $0.name == column.name }), previous.definition != column.definition else { continue }
            let oldType = TableColumns.type(of: previous.definition), newType = TableColumns.type(of: column.definition)
            let narrowed = oldType != newType && ColumnType.isNarrowing(from: oldType, to: newType)
            let detail = oldType != newType ? "type \(oldType) -> \(newType)\(narrowed ? " (narrowed)" : "")"
                                            : "definition \(previous.definition) -> \(column.definition)"
            changes.append(.init(change: .changed, kind: .column, name: "\(table).\(column.name)", detail: detail, destructive: narrowed))
        }
        let common = beforeNames.filter(afterNames.contains)
        if common != afterNames.filter(beforeNames.contains) {
            changes.append(.init(change: .reordered, kind: .table, name: table, detail: "columns reordered", destructive: false))
        }
        if changes.isEmpty {
            changes.append(.init(change: .changed, kind: .table, name: table, detail: "definition changed", destructive: false))
        }
        return changes
    }

    public var summary: String {
        guard hasDrift else { return "no drift" }
        let destructive = changes.filter(\.destructive).count
        var lines = ["drift: \(changes.count) object change(s)\(destructive > 0 ? ", \(destructive) DESTRUCTIVE" : "")"]
        for c in changes {
            lines.append("  \(c.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(c.change.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(c.name): \(c.detail)\(c.destructive ? "  [DESTRUCTIVE]" : "")")
        }
        return lines.joined(separator: "\n")
    }
}

enum ColumnType {
    static let integerWidth = ["smallint": 2, "integer": 4, "bigint": 8]

    /// True when values of `from` may not fit `to`.
    static func isNarrowing(from: String, to: String) -> Bool {
        if let a = integerWidth[from], let b = integerWidth[to] { return b < a }
        if (from == "text" || from.hasPrefix("character varying")) && (to.hasPrefix("character varying(") || to.hasPrefix("character(")) {
            guard let a = length(from) else { return true }
            return (length(to) ?? 0) < a
        }
        if from.hasPrefix("numeric") && to.hasPrefix("numeric") {
            let a = precision(from), b = precision(to)
            guard let a else { return b != nil }
            guard let b else { return false }
            return b.0 < a.0 || b.1 < a.1 || (b.0 - b.1) < (a.0 - a.1)
        }
        if from.hasPrefix("numeric") && integerWidth[to] != nil { return true }
        if (from == "double precision" && to == "real") || (from == "timestamp with time zone" && to == "date") { return true }
        return false
    }

    static func length(_ type: String) -> Int? {
        guard let open = type.firstIndex(of: "("), let close = type.firstIndex(of: ")") else { return nil }
        return Int(type[type.index(after: open)..<close])
    }

    static func precision(_ type: String) -> (Int, Int)? {
        guard let open = type.firstIndex(of: "("), let close = type.firstIndex(of: ")") else { return nil }
        let parts = type[type.index(after: open)..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.isEmpty ? nil : (parts[0], parts.count > 1 ? parts[1] : 0)
    }
}

/// Unified diff (Myers' O(ND) algorithm) with three lines of context.
enum UnifiedDiff {
    enum Edit: Equatable { case same(Int, Int), delete(Int), insert(Int) }

    static func edits(_ a: [Substring], _ b: [Substring]) -> [Edit] {
        let n = a.count, m = b.count, max = n + m
        if max == 0 { return [] }
        var v = [Int](repeating: 0, count: 2 * max + 2)
        var trace: [[Int]] = []
        outer: for d in 0...max {
            trace.append(v)
            for k in stride(from: -d, through: d, by: 2) {
                var x = (k == -d || (k != d && v[max + k - 1] < v[max + k + 1])) ? v[max + k + 1] : v[max + k - 1] + 1
                var y = x - k
                while x < n && y < m && a[x] == b[y] { x += 1; y += 1 }
                v[max + k] = x
                if x >= n && y >= m { trace.append(v); break outer }
            }
        }
        var edits: [Edit] = []
        var x = n, y = m
        for d in stride(from: trace.count - 2, through: 0, by: -1) {
            let v = trace[d]
            let k = x - y
            let prevK = (k == -d || (k != d && v[max + k - 1] < v[max + k + 1])) ? k + 1 : k - 1
            let prevX = v[max + prevK], prevY = prevX - prevK
            while x > prevX && y > prevY { x -= 1; y -= 1; edits.append(.same(x, y)) }
            if d > 0 {
                if x == prevX { y -= 1; edits.append(.insert(y)) } else { x -= 1; edits.append(.delete(x)) }
            }
        }
        while x > 0 && y > 0 { x -= 1; y -= 1; edits.append(.same(x, y)) }
        return edits.reversed()
    }

    static func render(old: String, new: String, oldLabel: String, newLabel: String, context: Int = 3) -> String {
        guard old != new else { return "" }
        let a = old.split(separator: "\n", omittingEmptySubsequences: false)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false)
        let script = edits(a, b)
        var out = ["--- \(oldLabel)", "+++ \(newLabel)"]
        var i = 0
        while i < script.count {
            guard let firstChange = script[i...].firstIndex(where: { if case .same = $0 { return false } else { return true } }) else { break }
            var start = max(i, firstChange - context)
            if start < i { start = i }
            var end = firstChange
            var lastChange = firstChange
            while end < script.count {
                if case .same = script[end] {
                    if end - lastChange > 2 * context { break }
                } else {
                    lastChange = end
                }
                end += 1
            }
            end = min(script.count, lastChange + context + 1)
            var lines: [String] = []
            var oldStart = 0, newStart = 0, oldCount = 0, newCount = 0
            var first = true
            for e in script[start..<end] {
                switch e {
                case let .same(x, y):
                    if first { oldStart = x; newStart = y; first = false }
                    lines.append(" " + a[x]); oldCount += 1; newCount += 1
                case let .delete(x):
                    if first { oldStart = x; newStart = position(script, start, inNew: true); first = false }
                    lines.append("-" + a[x]); oldCount += 1
                case let .insert(y):
                    if first { oldStart = position(script, start, inNew: false); newStart = y; first = false }
                    lines.append("+" + b[y]); newCount += 1
                }
            }
            out.append("@@ -\(oldStart + (oldCount > 0 ? 1 : 0)),\(oldCount) +\(newStart + (newCount > 0 ? 1 : 0)),\(newCount) @@")
            out += lines
            i = end
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// Line index in the other file where a hunk starting at `index` begins.
    static func position(_ script: [Edit], _ index: Int, inNew: Bool) -> Int {
        var count = 0
        for e in script[..<index] {
            switch e {
            case .same: count += 1
            case .delete: if !inNew { count += 1 }
            case .insert: if inNew { count += 1 }
            }
        }
        return count
    }
}
