import Foundation

/// `${VAR}` and `${VAR:-default}` in checklist fields, taken from the environment. Unset variables
/// without a default are an error, named; the values are never shown (the plan prints the templates).
public enum Interpolation {
    public static func expand(_ text: String, environment: [String: String]) throws -> String {
        var output = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            output += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw DRKitError(.usage, "unterminated ${ in \"\(text)\"")
            }
            let expression = String(rest[start.upperBound..<end])
            let parts = expression.components(separatedBy: ":-")
            let name = parts[0]
            if let value = environment[name], !value.isEmpty {
                output += value
            } else if parts.count > 1 {
                output += parts[1...].joined(separator: ":-")
            } else {
                throw DRKitError(.usage, "environment variable \(name) (used as ${\(name)}) is not set")
            }
            rest = rest[rest.index(after: end)...]
        }
        return output + rest
    }
}
