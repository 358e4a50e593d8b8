import Archive
import PostgresClient
import Foundation
import Common

/// Which DDL entries and data a partial restore (`restore --table/--schema`) runs, chosen on pg_dump's
/// own dependency graph (the backup's `schema/toc.json`): the chosen tables, everything they depend on
/// (schemas, types, functions, extensions, sequences), and what hangs on them (indexes, constraints,
/// defaults, owned sequences, triggers with their functions, policies, comments, privileges). An entry
/// that would need a table left out (a foreign key to it, a view over it) is skipped and reported.
/// Pure: the plan is a value, tested without a server.
struct PartialRestorePlan: Equatable {
    /// Header keys of the plain-script entries to run (type, schema or `-`, name).
    var entries: Set<DDLEntryKey>
    /// `schema.name` of the chosen tables (partitions of a chosen partitioned table included), whose rows are loaded.
    var tables: Set<String>
    /// The schemas the chosen tables are in.
    var schemas: Set<String>
    /// Entries left out because they need a table that is not restored, one line each.
    var skipped: [String]

    static func make(toc: DumpTOC, tablePatterns: [String], schemaPatterns: [String]) throws -> PartialRestorePlan {
        let byId = Dictionary(toc.entries.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let tableMatchers = try tablePatterns.map(NamePattern.init)
        let schemaMatchers = try schemaPatterns.map { try NamePattern($0, isSchema: true) }
        func inChosenSchema(_ entry: DumpTOC.Entry) -> Bool {
            guard let schema = entry.schema else { return false }
            return schemaMatchers.contains { $0.matches(schema: nil, name: schema) }
        }
        let matchedTables = Set(toc.entries.filter { entry in
            entry.type == "TABLE" && (inChosenSchema(entry) || tableMatchers.contains { $0.matches(schema: entry.schema, name: entry.name) })
        }.map(\.id))
        // A partitioned table holds no rows itself: choosing it chooses its partitions (pg_dump's
        // --table-and-children), through every level.
        let chosenTables = withPartitions(matchedTables, toc: toc, byId: byId)
        guard !chosenTables.isEmpty else {
            throw DRKitError(.usage, "no table in the backup matches \((tablePatterns.map { "--table \($0)" } + schemaPatterns.map { "--schema \($0)" }).joined(separator: " "))")
        }
        func closure(_ start: [Int]) -> Set<Int> {
            var seen = Set<Int>()
            var pending = start
            while let id = pending.popLast() {
                guard seen.insert(id).inserted, let entry = byId[id] else { continue }
                pending += entry.dependencies
            }
            return seen
        }
        let tableIds = Dictionary(toc.entries.filter { $0.type == "TABLE" }.map { ("\($0.schema ?? "-").\($0.name)", $0.id) },
                                  uniquingKeysWith: { a, _ in a })
        /// The table an attached entry belongs to, from its tag: `orders orders_pkey`, `TABLE orders`.
        func ownerTable(of entry: DumpTOC.Entry) -> Int? {
            let words = entry.name.split(separator: " ", maxSplits: 2)
            let name = words.first == "TABLE" && words.count > 1 ? words[1] : words.first ?? ""
            return tableIds["\(entry.schema ?? "-").\(name)"]
        }
        var selected = closure(Array(chosenTables))
        var rejected = Set<Int>()
        var skipped: [String] = []
        // Whole schemas bring every entry they hold; single tables bring what hangs on them.
        let schemaSeeds = Set(toc.entries.filter { inChosenSchema($0) && $0.type != "SCHEMA" }.map(\.id))
        var changed = true
        while changed {
            changed = false
            for entry in toc.entries where !selected.contains(entry.id) && !rejected.contains(entry.id) {
                let touches = attachedTypes.contains(entry.type) && entry.dependencies.contains(where: selected.contains)
                guard touches || schemaSeeds.contains(entry.id) else { continue }
                let extra = closure([entry.id]).subtracting(selected)
                let missing = extra.compactMap { byId[$0] }.filter { $0.type == "TABLE" && !chosenTables.contains($0.id) }
                if missing.isEmpty {
                    selected.formUnion(extra)
                    changed = true
                } else {
                    rejected.insert(entry.id)
                    // An entry of a table left out (the foreign key of a referencing table) goes silently;
                    // one of a restored table that needs a table left out is reported.
                    if let owner = ownerTable(of: entry), !chosenTables.contains(owner) { continue }
                    let tables = missing.map { "\($0.schema ?? "-").\($0.name)" }.sorted().joined(separator: ", ")
                    skipped.append("\(entry.type) \(entry.schema.map { "\($0)." } ?? "")\(entry.name): needs \(tables), which is not restored")
                }
            }
        }
        let entries = Set(selected.compactMap { byId[$0] }.map { DDLEntryKey(type: $0.type, schema: $0.schema ?? "-", name: $0.name) })
        let tables = Set(chosenTables.compactMap { byId[$0] }.map { "\($0.schema ?? "-").\($0.name)" })
        let schemas = Set(chosenTables.compactMap { byId[$0]?.schema })
        return PartialRestorePlan(entries: entries, tables: tables, schemas: schemas, skipped: skipped.sorted())
    }

    /// `tables` and, level by level, the partitions attached to them. pg_dump attaches a partition in a
    /// `TABLE ATTACH` entry named after the partition that depends on both tables.
    static func withPartitions(_ tables: Set<Int>, toc: DumpTOC, byId: [Int: DumpTOC.Entry]) -> Set<Int> {
        let attachments: [(parents: [Int], child: Int)] = toc.entries.filter { $0.type == "TABLE ATTACH" }.compactMap { attach in
            let tableDependencies = attach.dependencies.compactMap { byId[$0] }.filter { $0.type == "TABLE" }
            guard let child = tableDependencies.first(where: { $0.name == attach.name && $0.schema == attach.schema }) else { return nil }
            return (tableDependencies.map(\.id).filter { $0 != child.id }, child.id)
        }
        var chosen = tables
        var grew = true
        while grew {
            grew = false
            for attachment in attachments where !chosen.contains(attachment.child) && attachment.parents.contains(where: chosen.contains) {
                chosen.insert(attachment.child)
                grew = true
            }
        }
        return chosen
    }

    /// Entry types that only make sense on (or for) the objects they depend on.
    static let attachedTypes: Set<String> = [
        "INDEX", "CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "DEFAULT", "SEQUENCE", "SEQUENCE OWNED BY", "TRIGGER",
        "RULE", "POLICY", "ROW SECURITY", "COMMENT", "ACL", "SECURITY LABEL", "STATISTICS", "INDEX ATTACH", "TABLE ATTACH",
    ]

    /// The plain script with only the planned entries (its preamble of settings kept).
    func filter(_ script: DDLScript) -> DDLScript {
        var copy = script
        copy.entries = script.entries.filter { $0.key.map(entries.contains) ?? false }
        return copy
    }
}

/// psql's and pg_dump's name patterns: unquoted letters fold to lower case, `*` and `?` are
/// wildcards, a dot separates schema from name, double quotes keep everything literal (`""` is one
/// quote), `$` is literal, and other regular expression syntax works as written.
struct NamePattern {
    let schema: NSRegularExpression?
    let name: NSRegularExpression

    init(_ pattern: String) throws { try self.init(pattern, isSchema: false) }

    init(_ pattern: String, isSchema: Bool) throws {
        var parts: [String] = [""]
        var quoted = false
        var characters = Array(pattern)[...]
        while let character = characters.popFirst() {
            switch character {
            case "\"":
                if quoted, characters.first == "\"" { characters.removeFirst(); parts[parts.count - 1] += "\"" } else { quoted.toggle() }
            case "." where !quoted && !isSchema:
                parts.append("")
            case "*" where !quoted:
                parts[parts.count - 1] += ".*"
            case "?" where !quoted:
                parts[parts.count - 1] += "."
            case "$":
                parts[parts.count - 1] += "\\$"
            default:
                let text = String(character)
                parts[parts.count - 1] += quoted ? NSRegularExpression.escapedPattern(for: text) : text.lowercased()
            }
        }
        guard parts.count <= 3, !parts.contains(where: \.isEmpty) else {
            throw DRKitError(.usage, "\(pattern): not a valid table pattern (schema.table, * and ? wildcards, \"Quoted\" names)")
        }
        do {
            name = try NSRegularExpression(pattern: "^(" + parts[parts.count - 1] + ")$")
            schema = parts.count >= 2 ? try NSRegularExpression(pattern: "^(" + parts[parts.count - 2] + ")$") : nil
        } catch {
            throw DRKitError(.usage, "\(pattern): not a valid pattern (\(error))")
        }
    }

    func matches(schema schemaName: String?, name objectName: String) -> Bool {
        func test(_ expression: NSRegularExpression, _ text: String) -> Bool {
            expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
        if let schema, !test(schema, schemaName ?? "") { return false }
        return test(name, objectName)
    }
}

/// `--into-schema`: the planned entries of the chosen tables' schema, rewritten to create everything
/// in a new schema of an existing database. Entries of other schemas (types, functions, extensions
/// the tables use) are expected to exist there already and are left out, as are the source schema's
/// own entries (its CREATE SCHEMA, comment, privileges): nothing outside the new schema is touched.
enum SchemaRename {
    static func apply(_ script: DDLScript, from source: String, to target: String) -> (DDLScript, leftOut: [String]) {
        var copy = script
        var leftOut: [String] = []
        copy.entries = script.entries.compactMap { entry in
            guard let key = entry.key else { return nil }
            let aboutSchema = key.type == "SCHEMA" || key.name.hasPrefix("SCHEMA ")
            guard key.schema == source, !aboutSchema else {
                if !aboutSchema { leftOut.append("\(key.type) \(key.schema == "-" ? "" : key.schema + ".")\(key.name)") }
                return nil
            }
            var renamed = entry
            renamed.sql = rename(entry.sql, from: source, to: target)
            return renamed
        }
        return (copy, leftOut)
    }

    /// Every qualification `source.` (bare or quoted, as pg_dump prints it) at a token boundary becomes
    /// `"target".`, inside string literals too (`nextval('app.orders_id_seq')`).
    static func rename(_ sql: String, from source: String, to target: String) -> String {
        var forms = [Connection.quoteIdentifier(source)]
        if source.range(of: "^[a-z_][a-z0-9_$]*$", options: .regularExpression) != nil { forms.append(source) }
        var result = sql
        for form in forms {
            let pattern = "(?<![A-Za-z0-9_$\"])" + NSRegularExpression.escapedPattern(for: form) + "\\."
            result = result.replacingOccurrences(of: pattern, with: NSRegularExpression.escapedTemplate(for: Connection.quoteIdentifier(target)) + ".",
                                                 options: .regularExpression)
        }
        return result
    }
}

enum PartialRestore {
    /// The manifest as the restore sees it: only the planned tables' data, sequences and views, no
    /// large objects (pg_dump leaves them out of table selections too).
    static func narrow(_ manifest: BackupManifest, to plan: PartialRestorePlan) -> BackupManifest {
        var narrowed = manifest
        narrowed.tables = manifest.tables.filter { plan.tables.contains($0.qualifiedKey) }
        narrowed.sequences = manifest.sequences.filter { plan.entries.contains(.init(type: "SEQUENCE", schema: $0.schema, name: $0.name)) }
        narrowed.materializedViews = manifest.materializedViews.filter { plan.entries.contains(.init(type: "MATERIALIZED VIEW", schema: $0.schema, name: $0.name)) }
        narrowed.largeObjects = nil
        // A pack is read whole; only the chosen tables' slices are loaded.
        narrowed.packs = manifest.packs?.filter { $0.slices.contains { plan.tables.contains($0.qualifiedKey) } }
        return narrowed
    }

    /// The same, every relation of `source` now in `target`.
    static func rename(_ manifest: BackupManifest, from source: String, to target: String) -> BackupManifest {
        var renamed = manifest
        renamed.tables = manifest.tables.map { var t = $0; if t.schema == source { t.schema = target }; return t }
        renamed.packs = manifest.packs?.map { pack in
            var renamedPack = pack
            renamedPack.slices = pack.slices.map { var slice = $0; if slice.schema == source { slice.schema = target }; return slice }
            return renamedPack
        }
        renamed.sequences = manifest.sequences.filter { $0.schema == source }.map { var s = $0; s.schema = target; return s }
        renamed.materializedViews = manifest.materializedViews.filter { $0.schema == source }.map { var v = $0; v.schema = target; return v }
        return renamed
    }
}
