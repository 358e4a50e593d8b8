import Foundation
import Common

/// What one DDL statement defines, for the object-level summary.
public struct SchemaObject: Equatable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case table, column, index, constraint, function, type, view, sequence, trigger, comment, schema, `default`, other
    }

    public var kind: Kind
    /// Key of the object, e.g. `public.orders`, `public.orders_pkey`, `public.f(integer)`.
    public var name: String
    /// The table (or the object itself) that owns it, for `--exclude` and grouping.
    public var owner: String

    /// Patterns compiled once: a restore classifies every post-data entry of thousands of tables.
    private static let patterns = Locked([String: NSRegularExpression]())

    private static func compiled(_ pattern: String) -> NSRegularExpression? {
        if let regex = patterns.withLock({ $0[pattern] }) { return regex }
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { return nil }
        patterns.withLock { $0[pattern] = regex }
        return regex
    }

    static func classify(_ statement: String) -> SchemaObject {
        let flat = statement.replacingOccurrences(of: "\n", with: " ")
        func capture(_ pattern: String) -> [String]? {
            guard let regex = compiled(pattern),
                  let m = regex.firstMatch(in: flat, range: NSRange(flat.startIndex..., in: flat)) else { return nil }
            return (1..<m.numberOfRanges).map { i in
                Range(m.range(at: i), in: flat).map { String(flat[$0]) } ?? ""
            }
        }
        let ident = #"((?:"(?:[^"]|"")*"|[^\s(.,;]+)(?:\.(?:"(?:[^"]|"")*"|[^\s(.,;]+))?)"#
        if let c = capture(#"^CREATE (?:UNLOGGED |FOREIGN )?TABLE "# + ident) {
            return SchemaObject(kind: .table, name: unquote(c[0]), owner: unquote(c[0]))
        }
        if let c = capture(#"^CREATE (?:UNIQUE )?INDEX "# + ident + #" ON (?:ONLY )?"# + ident) {
            let table = unquote(c[1])
            return SchemaObject(kind: .index, name: schemaOf(table) + unquote(c[0]), owner: table)
        }
        if let c = capture(#"^ALTER TABLE (?:ONLY )?"# + ident + #"\s+ADD CONSTRAINT "# + ident) {
            return SchemaObject(kind: .constraint, name: unquote(c[0]) + "." + unquote(c[1]), owner: unquote(c[0]))
        }
        if let c = capture(#"^ALTER TABLE (?:ONLY )?"# + ident + #"\s+ALTER COLUMN "# + ident + #" SET DEFAULT"#) {
            return SchemaObject(kind: .default, name: unquote(c[0]) + "." + unquote(c[1]), owner: unquote(c[0]))
        }
        if let c = capture(#"^CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE|AGGREGATE) "# + ident + #"(\([^)]*\))"#) {
            return SchemaObject(kind: .function, name: unquote(c[0]) + c[1], owner: unquote(c[0]))
        }
        if let c = capture(#"^CREATE (?:TYPE|DOMAIN) "# + ident) {
            return SchemaObject(kind: .type, name: unquote(c[0]), owner: unquote(c[0]))
        }
        if let c = capture(#"^CREATE (?:OR REPLACE )?(?:MATERIALIZED )?VIEW "# + ident) {
            return SchemaObject(kind: .view, name: unquote(c[0]), owner: unquote(c[0]))
        }
        if let c = capture(#"^CREATE SEQUENCE "# + ident) {
            return SchemaObject(kind: .sequence, name: unquote(c[0]), owner: unquote(c[0]))
        }
        if let c = capture(#"^CREATE (?:CONSTRAINT )?TRIGGER "# + ident + #" .* ON "# + ident) {
            let table = unquote(c[1])
            return SchemaObject(kind: .trigger, name: table + "." + unquote(c[0]), owner: table)
        }
        if let c = capture(#"^COMMENT ON (.+?) IS "#) {
            let target = c[0]
            let ownerName = capture(#"^COMMENT ON (?:COLUMN |TABLE |VIEW |INDEX |FUNCTION |TYPE |SCHEMA |MATERIALIZED VIEW |SEQUENCE )"# + ident)
            return SchemaObject(kind: .comment, name: target, owner: ownerName.map { unquote($0[0]) } ?? target)
        }
        if let c = capture(#"^CREATE SCHEMA "# + ident) {
            return SchemaObject(kind: .schema, name: unquote(c[0]), owner: unquote(c[0]))
        }
        let firstLine = statement.split(separator: "\n").first.map(String.init) ?? statement
        return SchemaObject(kind: .other, name: firstLine, owner: firstLine)
    }

    static func schemaOf(_ qualified: String) -> String {
        guard let dot = qualified.firstIndex(of: ".") else { return "" }
        return String(qualified[...dot])
    }

    /// `"Sales"."Orders"` → `Sales.Orders`; unquoted names stay as they are.
    static func unquote(_ name: String) -> String {
        var parts: [String] = []
        var current = ""
        var inQuotes = false
        var chars = Array(name)
        var i = 0
        while i < chars.count {
            let ch = chars[i]
            if ch == "\"" {
                if inQuotes && i + 1 < chars.count && chars[i + 1] == "\"" { current.append("\""); i += 2; continue }
                inQuotes.toggle()
            } else if ch == "." && !inQuotes {
                parts.append(current)
                current = ""
            } else {
                current.append(ch)
            }
            i += 1
        }
        parts.append(current)
        chars = []
        return parts.joined(separator: ".")
    }
}

/// The columns of a `CREATE TABLE` statement, in order, with their definitions.
struct TableColumns {
    var columns: [(name: String, definition: String)]

    init(_ statement: String) {
        var columns: [(String, String)] = []
        for line in statement.split(separator: "\n").dropFirst() {
            var text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix(")") { break }
            if text.hasSuffix(",") { text.removeLast() }
            if text.uppercased().hasPrefix("CONSTRAINT ") { continue }
            let name: String
            let rest: String
            if text.hasPrefix("\"") {
                var end = text.index(after: text.startIndex)
                while end < text.endIndex {
                    if text[end] == "\"" {
                        let next = text.index(after: end)
                        if next < text.endIndex && text[next] == "\"" { end = text.index(after: next); continue }
                        break
                    }
                    end = text.index(after: end)
                }
                let close = min(text.index(after: end), text.endIndex)
                name = SchemaObject.unquote(String(text[..<close]))
                rest = String(text[close...]).trimmingCharacters(in: .whitespaces)
            } else {
                let pieces = text.split(separator: " ", maxSplits: 1)
                name = String(pieces.first ?? "")
                rest = pieces.count > 1 ? String(pieces[1]) : ""
            }
            columns.append((name, rest))
        }
        self.columns = columns
    }

    /// The column's type: its definition up to the first constraint keyword.
    static func type(of definition: String) -> String {
        let stops = [" NOT NULL", " DEFAULT ", " GENERATED ", " COLLATE ", " CONSTRAINT ", " CHECK ", " NULL"]
        var end = definition.endIndex
        for stop in stops { if let r = definition.range(of: stop), r.lowerBound < end { end = r.lowerBound } }
        return String(definition[..<end])
    }
}
