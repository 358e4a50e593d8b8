import Foundation
import Common

/// Schema changes on a streamed database, captured in order with its rows: event triggers that write
/// each DDL command's text into the WAL as a transactional logical message (`pg_logical_emit_message`),
/// which pgoutput delivers inside the transaction at the point the command ran. `restore --to-time`
/// runs the captured text at that point. Creating event triggers needs a superuser; without one the
/// stream falls back to a new base after each change and refuses the window before it.
///
/// The triggers and their functions (schema `drkit_capture`) are drkit's machinery, not the user's
/// schema: every pg_dump drkit runs leaves them out (`DumpFilter`, `dumpArguments`).
public enum SchemaCapture {
    static let schema = "drkit_capture"
    static let messagePrefix = "drkit.ddl"
    static let triggerPrefix = "drkit_capture_"
    static let triggers = ["drkit_capture_ddl", "drkit_capture_drop", "drkit_capture_rewrite"]

    /// One transaction: the schema, three functions and three triggers, `ENABLE ALWAYS` so that they
    /// fire in sessions with `session_replication_role = replica` too (a logical apply worker's DDL).
    /// The table_rewrite and sql_drop triggers leave a note in a transaction-local setting that the
    /// ddl_command_end trigger reads: a rewrite that filled a new column from a (volatile) default, and
    /// drops of temporary objects only (not worth a message).
    static let installSQL = """
        BEGIN;
        CREATE SCHEMA drkit_capture;
        REVOKE ALL ON SCHEMA drkit_capture FROM PUBLIC;
        COMMENT ON SCHEMA drkit_capture IS 'drkit stream: captures DDL for point-in-time restore (drkit stream drop removes it)';
        CREATE FUNCTION drkit_capture.on_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $drkit$
        BEGIN
            PERFORM pg_catalog.set_config('drkit.capture_rewrite',
                (coalesce(nullif(pg_catalog.current_setting('drkit.capture_rewrite', true), '')::int, 0)
                 | pg_catalog.pg_event_trigger_table_rewrite_reason())::text, true);
        END $drkit$;
        CREATE FUNCTION drkit_capture.on_drop() RETURNS event_trigger LANGUAGE plpgsql AS $drkit$
        BEGIN
            PERFORM pg_catalog.set_config('drkit.capture_temporary_drop',
                (SELECT coalesce(bool_and(is_temporary), false)::text FROM pg_catalog.pg_event_trigger_dropped_objects()), true);
        END $drkit$;
        CREATE FUNCTION drkit_capture.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $drkit$
        DECLARE
            only_temporary boolean;
        BEGIN
            IF tg_tag LIKE 'DROP %' THEN
                only_temporary := coalesce(pg_catalog.current_setting('drkit.capture_temporary_drop', true), '') = 'true';
            ELSE
                SELECT count(*) > 0 AND bool_and(coalesce(schema_name = 'pg_temp' OR schema_name LIKE 'pg\\_temp\\_%', false))
                  INTO only_temporary FROM pg_catalog.pg_event_trigger_ddl_commands();
            END IF;
            IF NOT only_temporary THEN
                PERFORM pg_catalog.pg_logical_emit_message(true, 'drkit.ddl', pg_catalog.json_build_object(
                    'key', pg_catalog.pg_backend_pid()::text || '/' || pg_catalog.statement_timestamp()::text,
                    'query', pg_catalog.current_query(),
                    'tag', tg_tag,
                    'searchPath', pg_catalog.current_setting('search_path'),
                    'role', current_user::text,
                    'rewrite', coalesce(nullif(pg_catalog.current_setting('drkit.capture_rewrite', true), '')::int, 0))::text);
            END IF;
            PERFORM pg_catalog.set_config('drkit.capture_rewrite', '', true);
            PERFORM pg_catalog.set_config('drkit.capture_temporary_drop', '', true);
        END $drkit$;
        CREATE EVENT TRIGGER drkit_capture_rewrite ON table_rewrite EXECUTE FUNCTION drkit_capture.on_rewrite();
        CREATE EVENT TRIGGER drkit_capture_drop ON sql_drop EXECUTE FUNCTION drkit_capture.on_drop();
        CREATE EVENT TRIGGER drkit_capture_ddl ON ddl_command_end EXECUTE FUNCTION drkit_capture.on_ddl();
        ALTER EVENT TRIGGER drkit_capture_rewrite ENABLE ALWAYS;
        ALTER EVENT TRIGGER drkit_capture_drop ENABLE ALWAYS;
        ALTER EVENT TRIGGER drkit_capture_ddl ENABLE ALWAYS;
        COMMIT
        """

    static let dropSQL = """
        DROP EVENT TRIGGER IF EXISTS drkit_capture_ddl; DROP EVENT TRIGGER IF EXISTS drkit_capture_drop;
        DROP EVENT TRIGGER IF EXISTS drkit_capture_rewrite; DROP SCHEMA IF EXISTS drkit_capture CASCADE
        """

    /// The three triggers exist and fire always: what the stream checks at every catalog look.
    static let liveSQL = """
        SELECT count(*) = 3 FROM pg_catalog.pg_event_trigger WHERE evtname LIKE 'drkit\\_capture\\_%' AND evtenabled = 'A'
        """

    /// `--exclude-schema` for every pg_dump drkit runs; the event triggers, which belong to no
    /// schema, are taken out of its output by `DumpFilter`.
    static let dumpArguments = ["--exclude-schema=drkit_capture"]

    /// What the ddl_command_end trigger wrote for one command. The commands of one query string share
    /// a key (and its text): replayed once.
    struct Command: Codable, Equatable {
        var key: String
        var query: String
        var tag: String
        var searchPath: String
        var role: String
        /// `pg_event_trigger_table_rewrite_reason()` bits of the rewrites the command caused.
        var rewrite: Int

        static func decode(_ content: [UInt8]) throws -> Command {
            do { return try JSONDecoder().decode(Command.self, from: Data(content)) } catch {
                throw DRKitError(.integrity, "a captured schema change in the change archive cannot be read: \(error)")
            }
        }
    }

    enum Verdict: Equatable {
        /// The statements to run, in order.
        case replay([String])
        /// Why it cannot be replayed exactly.
        case refuse(String)
    }

    /// A query string is replayed when every statement in it is DDL (with SET/RESET and transaction
    /// control, which the replay leaves out): DML beside it is in the archive already, so running it
    /// again would apply it twice.
    static func verdict(for commands: [Command]) -> Verdict {
        guard let first = commands.first else { return .replay([]) }
        if commands.contains(where: { $0.rewrite & 2 != 0 }) {
            return .refuse("it filled a new column from a volatile default (the table was rewritten; the values cannot be computed again)")
        }
        var statements: [String] = []
        for statement in SQLText.statements(first.query) {
            let words = SQLText.topLevelWords(statement)
            guard let verb = words.first else { continue }
            switch verb {
            case "BEGIN", "START", "COMMIT", "END", "SAVEPOINT", "RELEASE":
                continue
            case "SET", "RESET":
                if words.contains("SEARCH_PATH") || words.contains("ROLE") || words.contains("AUTHORIZATION") {
                    return .refuse("its query string changes search_path or the role between statements")
                }
                continue
            case "CREATE" where isCreateTableAs(words):
                return .refuse("CREATE TABLE ... AS writes rows that the archive holds too")
            case "CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "SECURITY", "REFRESH", "REINDEX", "IMPORT":
                statements.append(statement)
            default:
                return .refuse("its query string is not DDL alone (\(verb) ...): the rows it wrote are in the archive and would be applied twice")
            }
        }
        return .replay(statements)
    }

    private static func isCreateTableAs(_ words: [String]) -> Bool {
        guard let table = words.prefix(6).firstIndex(of: "TABLE") else { return false }
        return words[(table + 1)...].contains("AS")
    }

    /// Takes drkit's event-trigger entries out of a pg_dump plain-text script as it streams by. Each
    /// entry begins with a comment block (`--`, `-- Name: drkit_capture_ddl; Type: EVENT TRIGGER; ...`,
    /// `--`) and runs to the next block. Lines inside quotes (a function body holding such a block) are data.
    struct DumpFilter {
        private var script = DumpScriptLines()
        private var buffer = LineBuffer()
        private var held: [UInt8]?
        private var skipping = false

        mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            for line in buffer.lines(completedBy: bytes) { self.line(line, into: &out) }
            return out
        }

        mutating func finish() -> [UInt8] {
            var out: [UInt8] = []
            if let rest = buffer.rest() { line(rest, into: &out) }
            if let held, !skipping { out += held }
            held = nil
            return out
        }

        private static let header = Array("-- Name: \(SchemaCapture.triggerPrefix)".utf8)
        private static let eventTrigger = Array("; Type: EVENT TRIGGER;".utf8)

        private mutating func line(_ line: [UInt8], into out: inout [UInt8]) {
            let kind = script.next(line)
            if let previous = held {
                held = nil
                if kind == .entryHeader, line.starts(with: Self.header), line.firstRange(of: Self.eventTrigger) != nil {
                    skipping = true
                    return
                }
                // Any comment block ends the entry skipped: the next entry's header, or the dump's trailer.
                if kind == .entryHeader || kind == .blockComment { skipping = false }
                if !skipping { out += previous }
            }
            if kind == .separator {
                held = line
                return
            }
            if !skipping { out += line }
        }
    }
}

/// Statement boundaries and words of SQL text, outside quotes, dollar quotes and comments.
enum SQLText {
    /// The statements of a query string, split at top-level semicolons, trimmed, empty ones left out.
    static func statements(_ sql: String) -> [String] {
        var result: [String] = []
        var current = ""
        scan(sql) { character, code in
            if code, character == ";" {
                let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { result.append(trimmed) }
                current = ""
            } else {
                current.append(character)
            }
        }
        let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { result.append(trimmed) }
        return result
    }

    /// The keywords and unquoted identifiers of a statement outside parentheses, upper-cased.
    static func topLevelWords(_ statement: String) -> [String] {
        var words: [String] = []
        var word = ""
        var depth = 0
        func end() {
            if !word.isEmpty, depth == 0 { words.append(word.uppercased()) }
            word = ""
        }
        scan(statement) { character, code in
            guard code else { end(); return }
            if character.isLetter || character == "_" || (!word.isEmpty && (character.isNumber || character == "$")) {
                word.append(character)
                return
            }
            end()
            if character == "(" { depth += 1 } else if character == ")" { depth = max(0, depth - 1) }
        }
        end()
        return words
    }

    /// Calls `visit` for each character with whether it is code (false inside a string literal, a
    /// quoted identifier, a dollar-quoted body or a comment).
    private static func scan(_ sql: String, _ visit: (Character, Bool) -> Void) {
        var code: [Bool] = []
        code.reserveCapacity(sql.utf8.count)
        var lexer = SQLLexer()
        lexer.feed(sql.utf8) { _, isCode in code.append(isCode) }
        var offset = 0
        for character in sql {
            visit(character, code[offset])
            offset += character.utf8.count
        }
    }
}
