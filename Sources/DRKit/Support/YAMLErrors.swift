import Foundation

enum YAMLErrors {
    static func describe(_ error: Error) -> String {
        // Yams wraps an error thrown by a type's own decoder (an unknown key) in "not valid YAML".
        if case DecodingError.dataCorrupted(let context)? = error as? DecodingError, let own = context.underlyingError as? DRKitError {
            return own.message
        }
        if let own = error as? DRKitError { return own.message }
        if let decoding = error as? DecodingError {
            switch decoding {
            case .keyNotFound(let key, let context):
                return "missing field \"\(key.stringValue)\"" + path(context.codingPath)
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                return context.debugDescription + path(context.codingPath)
            @unknown default:
                return String(describing: error)
            }
        }
        return String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    static func path(_ codingPath: [CodingKey]) -> String {
        codingPath.isEmpty ? "" : " at " + codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
