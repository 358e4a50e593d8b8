import Foundation

/// A pg_dump plain-text DDL script split into its entries, so post-data can run in phases.
///
/// pg_dump heads every entry with a comment block: `--\n-- Name: x; Type: INDEX; Schema: s; Owner: o\n--`.
/// The text before the first entry is the preamble of session settings, which every connection
/// running entries must apply first.
struct DDLScript: Equatable, Sendable {
    struct Entry: Equatable, Sendable {
        var type: String
        var sql: String
        /// What its header names (nil for `-- Data for Name:` entries): how partial restores pick entries.
        var key: DDLEntryKey?
        /// `default_tablespace` and `default_table_access_method` as in force where the entry begins.
        /// pg_dump sets them only when they change, just before the entry that needs them; an entry run
        /// on another connection than the one before it must set them itself (`runnable`).
        var placement = ""

        /// The entry's SQL with its placement settings first: safe on any connection.
        var runnable: String { placement.isEmpty ? sql : placement + "\n" + sql }
    }

    /// The settings pg_dump emits only when they change, so that a connection keeps them for what follows.
    static let placementSettings = ["default_tablespace", "default_table_access_method"]

    var preamble: String
    var entries: [Entry]

    init(_ text: String) {
        var preambleLines: [Substring] = []
        var entries: [Entry] = []
        var currentType: String?
        var currentKey: DDLEntryKey?
        var currentLines: [Substring] = []
        var currentPlacement = ""
        var inForce: [String: Substring] = [:]
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let kinds = DumpScriptLines.kinds(of: lines.lazy.map(\.utf8))
        func flush() {
            if let type = currentType {
                entries.append(Entry(type: type, sql: currentLines.joined(separator: "\n"), key: currentKey, placement: currentPlacement))
            }
            currentLines = []
        }
        for (index, line) in lines.enumerated() {
            let kind = kinds[index]
            // psql meta-commands (\restrict, \unrestrict, \connect) are not SQL; the server must not see them.
            if kind != .quoted, line.hasPrefix("\\") { continue }
            if kind == .separator, index + 1 < lines.count, kinds[index + 1] == .entryHeader {
                let header = lines[index + 1]
                flush()
                currentType = DDLScript.type(of: header)
                currentKey = DDLEntryKey(header: header)
                currentPlacement = inForce.isEmpty ? "" : DDLScript.placementSettings.map { name in
                    inForce[name].map(String.init) ?? "RESET \(name);"
                }.joined(separator: "\n")
                currentLines = [line]
                continue
            }
            if kind == .code, line.hasPrefix("SET "), let name = DDLScript.placementSettings.first(where: { line.hasPrefix("SET \($0) = ") }) {
                inForce[name] = line
            }
            if currentType == nil { preambleLines.append(line) } else { currentLines.append(line) }
        }
        flush()
        self.preamble = preambleLines.joined(separator: "\n")
        self.entries = entries
    }

    static func type(of header: Substring) -> String {
        guard let start = header.range(of: "; Type: ") else { return "UNKNOWN" }
        let rest = header[start.upperBound...]
        return String(rest.prefix { $0 != ";" })
    }

    /// The script without ownership changes (`ALTER ... OWNER TO ...`, one line each in pg_dump's
    /// output) and/or without privilege entries (`Type: ACL` / `DEFAULT ACL`), for restoring onto a
    /// cluster that lacks the source's roles. Objects then belong to the restoring user.
    func without(owners: Bool, privileges: Bool) -> DDLScript {
        guard owners || privileges else { return self }
        var copy = self
        if privileges { copy.entries.removeAll { $0.type == "ACL" || $0.type == "DEFAULT ACL" } }
        if owners {
            copy.entries = copy.entries.map { entry in
                var e = entry
                e.sql = SQLLexer.lines(of: entry.sql)
                    .filter { line, continuesQuote in continuesQuote || !(line.hasPrefix("ALTER ") && line.contains(" OWNER TO ") && line.hasSuffix(";")) }
                    .map(\.line).joined(separator: "\n")
                return e
            }
        }
        return copy
    }

    /// Splits one `pg_dump --section=pre-data --section=post-data` script where post-data begins: at the
    /// header of `firstPostData`, the first post-data entry of pg_dump's table of contents (entries of no
    /// section go with the section before them, as pg_dump's own `--section` runs place them). The
    /// post-data part gets the script's preamble of session settings. Bytes, not text: the script is in
    /// the database's encoding. Nil when that header is not there.
    static func splitSections(_ script: [UInt8], firstPostData: DDLEntryKey?) -> (preData: [UInt8], postData: [UInt8])? {
        var lineStarts = [0]
        for (offset, byte) in script.enumerated() where byte == 0x0A { lineStarts.append(offset + 1) }
        func end(_ index: Int) -> Int { index + 1 < lineStarts.count ? lineStarts[index + 1] - 1 : script.count }
        let kinds = DumpScriptLines.kinds(of: lineStarts.indices.lazy.map { script[lineStarts[$0]..<end($0)] })
        func header(at index: Int) -> Substring? {
            guard kinds[index] == .separator, index + 1 < kinds.count, kinds[index + 1] == .entryHeader else { return nil }
            return Substring(String(decoding: script[lineStarts[index + 1]..<end(index + 1)], as: UTF8.self))
        }
        let firstEntry = lineStarts.indices.first { header(at: $0) != nil }
        let preamble = Array(script[..<(firstEntry.map { lineStarts[$0] } ?? script.count)])
        guard let firstPostData else { return (script, preamble) }
        guard let boundary = lineStarts.indices.first(where: { index in header(at: index).flatMap { DDLEntryKey(header: $0) } == firstPostData }) else {
            return nil
        }
        return (Array(script[..<lineStarts[boundary]]), preamble + Array(script[lineStarts[boundary]...]))
    }

    /// The whole script without meta-commands, for running in one go.
    var sql: String { ([preamble] + entries.map(\.sql)).joined(separator: "\n") }

    /// Entry types that only build structures on one table and can run side by side.
    static let parallelTypes: Set<String> = ["INDEX", "CONSTRAINT"]

    /// `schema.table` an INDEX or CONSTRAINT entry acts on (unquoted), from its SQL.
    static func table(of entry: Entry) -> String? {
        let object = SchemaObject.classify(statements(of: entry))
        return object.kind == .index || object.kind == .constraint ? object.owner : nil
    }

    /// The entry's SQL without its header comment and blank lines.
    static func statements(of entry: Entry) -> String {
        SQLLexer.lines(of: entry.sql).filter { isStatementLine($0.line, continuesQuote: $0.continuesQuote) }.map(\.line).joined(separator: "\n")
    }

    /// A line of an entry the server runs: not a comment, not blank, unless it continues a quote (a
    /// function body's or a value's text is kept whole).
    static func isStatementLine(_ line: some StringProtocol, continuesQuote: Bool) -> Bool {
        continuesQuote || (!line.isEmpty && !line.hasPrefix("--"))
    }

    /// A plain `PRIMARY KEY (cols)` or `UNIQUE (cols)` constraint as two steps: its unique index, built
    /// under a SHARE lock (beside the table's other index builds, as `ADD CONSTRAINT` under ACCESS
    /// EXCLUSIVE cannot), then the constraint taking that index, which is quick. Same index, same
    /// constraint, same names. Nil for anything else (INCLUDE, WITH, a tablespace, DEFERRABLE, NULLS NOT
    /// DISTINCT...), which runs as pg_dump wrote it.
    static func indexFirst(_ entry: Entry) -> [String]? {
        guard entry.type == "CONSTRAINT" else { return nil }
        let ident = #"(?:"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*)"#
        let pattern = #"^ALTER TABLE ONLY ("# + ident + #"\."# + ident + #")\n    ADD CONSTRAINT ("# + ident + #") (PRIMARY KEY|UNIQUE) \(([^()]*)\);$"#
        let statement = statements(of: entry)
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let match = regex.firstMatch(in: statement, range: NSRange(statement.startIndex..., in: statement)), match.numberOfRanges == 5 else { return nil }
        let part = { (i: Int) in String(statement[Range(match.range(at: i), in: statement)!]) }
        let (table, name, kind, columns) = (part(1), part(2), part(3), part(4))
        return ["CREATE UNIQUE INDEX \(name) ON \(table) USING btree (\(columns));",
                "ALTER TABLE ONLY \(table) ADD CONSTRAINT \(name) \(kind) USING INDEX \(name);"]
    }
}

/// An entry as pg_dump's headers and its table of contents name it: `-- Name: orders; Type: TABLE;
/// Schema: app; Owner: shop` is (TABLE, app, orders); a missing schema is `-`.
struct DDLEntryKey: Hashable, Sendable {
    var type: String
    var schema: String
    var name: String

    init(type: String, schema: String, name: String) {
        self.type = type
        self.schema = schema
        self.name = name
    }

    init?(header line: Substring) {
        guard let prefix = DumpScriptLines.keyedHeaderPrefixes.first(where: line.hasPrefix),
              let type = line.range(of: "; Type: "), let schema = line.range(of: "; Schema: ") else { return nil }
        self.init(type: String(line[type.upperBound..<schema.lowerBound]), schema: String(line[schema.upperBound...].prefix { $0 != ";" }),
                  name: String(line[line.index(line.startIndex, offsetBy: prefix.count)..<type.lowerBound]))
    }
}
