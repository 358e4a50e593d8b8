/// Tells SQL code from the text of string literals, quoted identifiers, dollar-quoted bodies and
/// comments, across the lines of a script fed one at a time.
///
/// Line-based readers of pg_dump's output (entry headers, `--` comments, blank lines, psql
/// meta-commands, `ALTER ... OWNER TO` lines) must only look at lines that begin in code: a function
/// body, a comment's text or a statistics value can hold a line that looks like any of them, and it is
/// data. Bytes, not characters: every delimiter is ASCII, and the server encodings never use ASCII
/// bytes inside a multibyte character.
struct SQLLexer {
    private enum State: Equatable {
        case code
        /// Inside `'...'` or `"..."`; `E'...'` strings also take backslash escapes.
        case quoted(UInt8, backslashes: Bool)
        case dollarQuoted(tag: [UInt8])
        case blockComment(depth: Int)
    }

    private var state = State.code

    /// Whether the next text fed begins inside a literal, a quoted identifier, a dollar-quoted body or
    /// a block comment (a `--` comment ends with its line).
    var continuesQuote: Bool { state != .code }

    /// Feeds whole lines (one or more, newlines included or not), calling `visit` with each byte's
    /// offset in `text` and whether it is code.
    mutating func feed(_ text: some Collection<UInt8>, visit: ((Int, Bool) -> Void)? = nil) {
        if text.withContiguousStorageIfAvailable({ scan($0, visit: visit) }) == nil {
            Array(text).withUnsafeBufferPointer { scan($0, visit: visit) }
        }
    }

    private mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, visit: ((Int, Bool) -> Void)?) {
        var index = 0
        func pass(_ count: Int, code: Bool) {
            let end = min(index + count, bytes.count)
            if let visit { for offset in index..<end { visit(offset, code) } }
            index = end
        }
        /// Without a visitor, runs of bytes that change nothing are skipped at once.
        func skip(while unremarkable: (UInt8) -> Bool) {
            guard visit == nil else { return }
            while index < bytes.count, unremarkable(bytes[index]) { index += 1 }
        }
        func next(is byte: UInt8) -> Bool { index + 1 < bytes.count && bytes[index + 1] == byte }
        while index < bytes.count {
            switch state {
            case .code:
                skip { $0 != UInt8(ascii: "-") && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "'") && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "$") }
                guard index < bytes.count else { return }
                let byte = bytes[index]
                if byte == UInt8(ascii: "-"), next(is: UInt8(ascii: "-")) {
                    var end = index
                    while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                    pass(end - index, code: false)
                } else if byte == UInt8(ascii: "/"), next(is: UInt8(ascii: "*")) {
                    state = .blockComment(depth: 1)
                    pass(2, code: false)
                } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                    let escapePrefix = byte == UInt8(ascii: "'") && index > 0 && (bytes[index - 1] | 0x20) == UInt8(ascii: "e")
                        && (index < 2 || !Self.isWordByte(bytes[index - 2]))
                    state = .quoted(byte, backslashes: escapePrefix)
                    pass(1, code: false)
                } else if byte == UInt8(ascii: "$"), index == 0 || !Self.isWordByte(bytes[index - 1]), let tag = dollarTag(bytes, at: index) {
                    state = .dollarQuoted(tag: tag)
                    pass(tag.count, code: false)
                } else {
                    pass(1, code: true)
                }
            case .quoted(let quote, let backslashes):
                skip { $0 != quote && $0 != UInt8(ascii: "\\") }
                guard index < bytes.count else { return }
                let byte = bytes[index]
                if backslashes, byte == UInt8(ascii: "\\") {
                    pass(2, code: false)
                } else if byte == quote, next(is: quote) {
                    pass(2, code: false)
                } else {
                    if byte == quote { state = .code }
                    pass(1, code: false)
                }
            case .dollarQuoted(let tag):
                skip { $0 != UInt8(ascii: "$") }
                guard index < bytes.count else { return }
                if bytes[index] == UInt8(ascii: "$"), index + tag.count <= bytes.count, tag.indices.allSatisfy({ bytes[index + $0] == tag[$0] }) {
                    state = .code
                    pass(tag.count, code: false)
                } else {
                    pass(1, code: false)
                }
            case .blockComment(let depth):
                skip { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "*") }
                guard index < bytes.count else { return }
                if bytes[index] == UInt8(ascii: "/"), next(is: UInt8(ascii: "*")) {
                    state = .blockComment(depth: depth + 1)
                    pass(2, code: false)
                } else if bytes[index] == UInt8(ascii: "*"), next(is: UInt8(ascii: "/")) {
                    state = depth == 1 ? .code : .blockComment(depth: depth - 1)
                    pass(2, code: false)
                } else {
                    pass(1, code: false)
                }
            }
        }
    }

    /// `$tag$` opening at `start` (tag empty, or an identifier not starting with a digit); nil for a
    /// parameter such as `$1` or a lone `$`.
    private func dollarTag(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> [UInt8]? {
        var end = start + 1
        while end < bytes.count, Self.isWordByte(bytes[end]), bytes[end] != UInt8(ascii: "$"),
              end > start + 1 || !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) {
            end += 1
        }
        guard end < bytes.count, bytes[end] == UInt8(ascii: "$") else { return nil }
        return Array(bytes[start...end])
    }

    /// A byte that continues an identifier (letters, digits, `_`, `$`, and any byte of a non-ASCII character).
    static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "$"), 0x80...: true
        default: false
        }
    }

    /// The lines of `text` (split at `\n`), each with whether it begins inside a quote or block comment
    /// an earlier line opened.
    static func lines(of text: some StringProtocol) -> [(line: Substring, continuesQuote: Bool)] {
        var lexer = SQLLexer()
        return Substring(text).split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let continues = lexer.continuesQuote
            lexer.feed(line.utf8)
            return (line, continues)
        }
    }
}
