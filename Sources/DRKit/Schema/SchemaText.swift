import Foundation

/// A pg_dump schema script reduced to what is schema: the statements, without what varies between
/// runs and machines (headers, "Dumped from/by", \restrict lines, pg_dump's object-header comments,
/// the SET preamble, trailing whitespace, blank-line runs, CRLF). Lines inside string literals,
/// dollar-quoted bodies and block comments are kept (but for trailing whitespace), so a change anywhere
/// in a function body or a comment's text still shows.
public struct SchemaText: Equatable, Sendable {
    public struct Statement: Equatable, Sendable {
        public var text: String
        public var object: SchemaObject
    }

    public var statements: [Statement]

    public init(pgDumpOutput text: String) {
        statements = SchemaText.split(SchemaText.normalizedLines(text)).map {
            let object = SchemaObject.classify($0)
            return Statement(text: object.kind == .view ? SchemaText.unqualifiedSingleTableView($0) : $0, object: object)
        }
    }

    static let singleFrom = try! NSRegularExpression(pattern: #"^\s*FROM ((?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)\.)?("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)(?: [A-Za-z_][A-Za-z0-9_]*)?;?$"#,
                                                   options: [.anchorsMatchLines])

    /// PostgreSQL 16 stopped qualifying column names in a single-table view's definition
    /// (`orders.total` became `total`), so one schema read by pg_dump from 15 and from 16+ would differ.
    /// For a view that reads one relation and no other (one FROM line, no JOIN, no subquery), both
    /// forms become the unqualified one; views over several relations keep their qualifiers on every
    /// version and are left alone.
    static func unqualifiedSingleTableView(_ statement: String) -> String {
        let ns = statement as NSString
        let froms = singleFrom.matches(in: statement, range: NSRange(location: 0, length: ns.length))
        let upper = statement.uppercased()
        guard froms.count == 1, upper.components(separatedBy: " FROM ").count <= 2, upper.components(separatedBy: "FROM ").count == 2,
              !upper.contains(" JOIN "), !upper.contains("(SELECT") else { return statement }
        let relation = ns.substring(with: froms[0].range(at: 2))
        let body = statement.components(separatedBy: " AS\n")
        guard body.count == 2 else { return statement }
        let qualifier = NSRegularExpression.escapedPattern(for: relation) + #"\.(?=["A-Za-z_])"#
        let unqualified = body[1].replacingOccurrences(of: #"(?<![A-Za-z0-9_."])"# + qualifier, with: "", options: .regularExpression)
        return body[0] + " AS\n" + unqualified
    }

    public var normalized: String { statements.map(\.text).joined(separator: "\n\n") + (statements.isEmpty ? "" : "\n") }

    public func excluding(_ globs: [String]) -> SchemaText {
        guard !globs.isEmpty else { return self }
        var copy = self
        copy.statements.removeAll { statement in
            globs.contains { Glob.matches($0, statement.object.owner) || Glob.matches($0, statement.object.name) }
        }
        return copy
    }

    static let droppedComment = try! NSRegularExpression(pattern:
        #"^--( Name: .*; Type: .*| Dumped (from|by) .*| PostgreSQL database dump( complete)?| TOC entry .*| Dependencies: .*| Data for Name: .*)?$"#)
    static let preamble = try! NSRegularExpression(pattern:
        #"^(SET [a-z_]+ = .*;|SELECT pg_catalog\.set_config\('search_path', '', false\);)$"#)

    static func normalizedLines(_ text: String) -> [String] {
        var out: [String] = []
        var quote = SQLLexer()
        var inHeader = false
        for raw in text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            var line = String(raw)
            while let last = line.last, last == " " || last == "\t" || last == "\r" { line.removeLast() }
            if quote.continuesQuote {
                out.append(line)
                quote.feed(line.utf8)
                continue
            }
            if line == SchemaSnapshot.headerFirstLine { inHeader = true }
            if inHeader {
                if line == SchemaSnapshot.headerLastLine { inHeader = false }
                continue
            }
            let range = NSRange(line.startIndex..., in: line)
            if line.hasPrefix("\\restrict") || line.hasPrefix("\\unrestrict")
                || droppedComment.firstMatch(in: line, range: range) != nil
                || preamble.firstMatch(in: line, range: range) != nil {
                continue
            }
            if line.isEmpty && (out.last?.isEmpty ?? true) { continue }
            out.append(line)
            quote.feed(line.utf8)
        }
        while out.last?.isEmpty == true { out.removeLast() }
        return out
    }

    /// Statements end with `;` at the end of a line outside quotes.
    static func split(_ lines: [String]) -> [String] {
        var statements: [String] = []
        var current: [String] = []
        var quote = SQLLexer()
        for line in lines {
            if current.isEmpty && line.isEmpty { continue }
            current.append(line)
            quote.feed(line.utf8)
            if !quote.continuesQuote && line.hasSuffix(";") {
                statements.append(current.joined(separator: "\n"))
                current = []
            }
        }
        if !current.isEmpty { statements.append(current.joined(separator: "\n")) }
        return statements
    }
}
