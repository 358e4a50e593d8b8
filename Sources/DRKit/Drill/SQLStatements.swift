import Foundation
import Common

/// Splits a SQL script into statements at `;` outside quotes, dollar quotes and comments.
enum SQLStatements {
    static func split(_ text: String) -> [String] {
        var statements: [String] = []
        var current = ""
        let chars = Array(text)
        var i = 0
        var dollarTag: String?
        func flush() {
            let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty { statements.append(trimmed) }
            current = ""
        }
        while i < chars.count {
            let c = chars[i]
            if let tag = dollarTag {
                if c == "$", String(chars[i..<min(chars.count, i + tag.count)]) == tag {
                    current += tag
                    i += tag.count
                    dollarTag = nil
                    continue
                }
                current.append(c)
                i += 1
                continue
            }
            switch c {
            case "-" where i + 1 < chars.count && chars[i + 1] == "-":
                while i < chars.count && chars[i] != "\n" { i += 1 }
                continue
            case "'", "\"":
                current.append(c)
                i += 1
                while i < chars.count {
                    current.append(chars[i])
                    if chars[i] == c {
                        if i + 1 < chars.count && chars[i + 1] == c { current.append(c); i += 2; continue }
                        break
                    }
                    i += 1
                }
                i += 1
                continue
            case "$":
                var j = i + 1
                while j < chars.count && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                if j < chars.count && chars[j] == "$" {
                    let tag = String(chars[i...j])
                    dollarTag = tag
                    current += tag
                    i = j + 1
                    continue
                }
            case ";":
                flush()
                i += 1
                continue
            default:
                break
            }
            current.append(c)
            i += 1
        }
        flush()
        return statements
    }
}
