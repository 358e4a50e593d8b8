import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML document as a tree, enough for S3's small response bodies.
final class XMLNodeTree {
    let name: String
    var text = ""
    var children: [XMLNodeTree] = []

    init(name: String) { self.name = name }

    func child(_ name: String) -> XMLNodeTree? { children.first { $0.name == name } }
    func all(_ name: String) -> [XMLNodeTree] { children.filter { $0.name == name } }
    func value(_ name: String) -> String? { child(name)?.text }
    /// The text of the first element named `name` at any depth.
    func deepValue(_ name: String) -> String? {
        if let direct = child(name) { return direct.text }
        for child in children { if let found = child.deepValue(name) { return found } }
        return nil
    }

    static func parse(_ bytes: [UInt8]) -> XMLNodeTree? {
        let builder = Builder()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = builder
        guard parser.parse() else { return nil }
        return builder.root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLNodeTree] = []
        var root: XMLNodeTree?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            let element = XMLNodeTree(name: elementName)
            stack.last?.children.append(element)
            if root == nil { root = element }
            stack.append(element)
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack.last?.text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            _ = stack.popLast()
        }
    }
}

/// XML text escaping for request bodies.
enum XMLText {
    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }
}
