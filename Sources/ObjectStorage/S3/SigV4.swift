import Foundation
import Common

public struct AWSCredentials: Sendable, Equatable {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where they came from, for messages ("environment", "profile default in ~/.aws/credentials").
    public var source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "explicit") {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }
}

/// AWS Signature Version 4, header-based. Pure: no I/O, no clock (the date is passed in).
public struct SigV4Signer: Sendable {
    public enum PathRule: Sendable {
        /// S3: the path is URI-encoded once and never normalized (`a//b/../c` is a key like any other).
        case s3
        /// Every other service: dot segments and repeated slashes removed, then encoded.
        case normalized
    }

    public struct Request: Sendable {
        public var method: String
        /// The decoded path, e.g. `/bucket/key with spaces`.
        public var path: String
        /// Decoded query parameters.
        public var query: [(String, String)]
        public var headers: [(String, String)]
        /// Hex SHA-256 of the payload (or `UNSIGNED-PAYLOAD`).
        public var payloadHash: String

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    public var region: String
    public var service: String
    public var pathRule: PathRule

    public init(region: String, service: String = "s3", pathRule: PathRule = .s3) {
        self.region = region
        self.service = service
        self.pathRule = pathRule
    }

    public static func amzDate(_ date: Date) -> String { Timestamps.compact(date) }

    /// RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~ becomes %XX (UTF-8, upper-case hex).
    public static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    func canonicalPath(_ path: String) -> String {
        switch pathRule {
        case .s3:
            return SigV4Signer.uriEncode(path.isEmpty ? "/" : path, keepSlash: true)
        case .normalized:
            var segments: [String] = []
            for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
                if segment == "." { continue }
                if segment == ".." { _ = segments.popLast(); continue }
                segments.append(String(segment))
            }
            let trailing = path.hasSuffix("/") && !segments.isEmpty ? "/" : ""
            return "/" + segments.map { SigV4Signer.uriEncode($0) }.joined(separator: "/") + trailing
        }
    }

    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(key: String, value: String)] = query.map { (uriEncode($0.0), uriEncode($0.1)) }
        let sorted = encoded.sorted { a, b in a.key == b.key ? a.value < b.value : a.key < b.key }
        return sorted.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
    }

    /// Lower-cased names; values trimmed with inner runs of white space folded; repeats joined by commas.
    static func canonicalHeaders(_ headers: [(String, String)]) -> [(String, String)] {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let folded = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
            merged[name.lowercased(), default: []].append(folded)
        }
        return merged.map { ($0.key, $0.value.joined(separator: ",")) }.sorted { $0.0 < $1.0 }
    }

    public func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        let headers = SigV4Signer.canonicalHeaders(request.headers)
        let signed = headers.map(\.0).joined(separator: ";")
        let text = [
            request.method,
            canonicalPath(request.path),
            SigV4Signer.canonicalQuery(request.query),
            headers.map { "\($0.0):\($0.1)\n" }.joined(),
            signed,
            request.payloadHash,
        ].joined(separator: "\n")
        return (text, signed)
    }

    public func scope(_ amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        ["AWS4-HMAC-SHA256", amzDate, scope(amzDate), SHA256.hex(canonicalRequest)].joined(separator: "\n")
    }

    public func signingKey(secret: String, amzDate: String) -> [UInt8] {
        let date = HMACSHA256.authenticate(key: Array("AWS4\(secret)".utf8), message: Array(amzDate.prefix(8).utf8))
        let region = HMACSHA256.authenticate(key: date, message: Array(self.region.utf8))
        let service = HMACSHA256.authenticate(key: region, message: Array(self.service.utf8))
        return HMACSHA256.authenticate(key: service, message: Array("aws4_request".utf8))
    }

    /// The Authorization header value for a request whose headers (including x-amz-date) are final.
    public func authorization(_ request: Request, credentials: AWSCredentials, amzDate: String) -> String {
        let (canonical, signed) = canonicalRequest(request)
        let toSign = stringToSign(canonicalRequest: canonical, amzDate: amzDate)
        let signature = Hex.encode(HMACSHA256.authenticate(key: signingKey(secret: credentials.secretAccessKey, amzDate: amzDate),
                                                           message: Array(toSign.utf8)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope(amzDate)), SignedHeaders=\(signed), Signature=\(signature)"
    }

    /// Adds x-amz-date, x-amz-content-sha256, x-amz-security-token and Authorization to an S3 request.
    /// `request.headers` must hold `host` and any other header to be signed.
    public func signS3(_ request: Request, credentials: AWSCredentials, date: Date) -> [(String, String)] {
        let amzDate = SigV4Signer.amzDate(date)
        var signed = request
        signed.headers += [("x-amz-date", amzDate), ("x-amz-content-sha256", request.payloadHash)]
        if let token = credentials.sessionToken { signed.headers.append(("x-amz-security-token", token)) }
        return signed.headers + [("Authorization", authorization(signed, credentials: credentials, amzDate: amzDate))]
    }
}
