/// pg_dump's plain script told apart line by line as it is read: which lines begin inside a quote
/// (data, whatever they look like), and which open an entry.
///
/// pg_dump heads every entry with a comment block, `--`, then `-- Name: x; Type: INDEX; Schema: s; Owner: o`
/// (or `-- Data for Name: ...`, `-- Statistics for Name: ...`), then `--`. Every reader of the script
/// (the restore's parser, the backup's section split, partial selection, the statistics reader and the
/// capture-trigger filter) finds entries here, so that a function body or a value holding such lines
/// cannot split an entry in one reader and not in another.
struct DumpScriptLines {
    enum Kind: Equatable {
        /// Begins inside a string, quoted identifier, dollar-quoted body or block comment an earlier line opened.
        case quoted
        /// `--` alone, in code: the first line of a comment block.
        case separator
        /// The header that names an entry, right after a separator; the separator belongs to its entry.
        case entryHeader
        /// Any other `-- ...` line right after a separator (`-- PostgreSQL database dump complete`).
        case blockComment
        case code
    }

    /// How pg_dump begins the second line of an entry's header: definitions, data, and (18+) statistics.
    static let headerPrefixes = keyedHeaderPrefixes + ["-- Data for Name: "]
    /// The headers of entries a `DDLEntryKey` names (a table's data entry is its table's, not a key of its own).
    static let keyedHeaderPrefixes = ["-- Name: ", "-- Statistics for Name: "]
    private static let headerPrefixBytes = headerPrefixes.map { Array($0.utf8) }

    private var lexer = SQLLexer()
    private var afterSeparator = false

    /// The next line's kind; `line` is the line without or with its `\n`.
    mutating func next(_ line: some BidirectionalCollection<UInt8>) -> Kind {
        let quoted = lexer.continuesQuote
        lexer.feed(line)
        let text = line.last == UInt8(ascii: "\n") ? line.dropLast() : line[...]
        let kind: Kind
        if quoted {
            kind = .quoted
        } else if text.elementsEqual("--".utf8) {
            kind = .separator
        } else if afterSeparator, Self.headerPrefixBytes.contains(where: { text.starts(with: $0) }) {
            kind = .entryHeader
        } else if afterSeparator, text.starts(with: "-- ".utf8) {
            kind = .blockComment
        } else {
            kind = .code
        }
        afterSeparator = kind == .separator
        return kind
    }

    /// The kind of each line of a whole script's lines.
    static func kinds<Line: BidirectionalCollection<UInt8>>(of lines: some Sequence<Line>) -> [Kind] {
        var reader = DumpScriptLines()
        return lines.map { reader.next($0) }
    }
}
