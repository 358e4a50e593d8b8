import Foundation
import Common

/// The age file format (https://age-encryption.org/v1) with X25519 recipients: what lets a backup host
/// hold only public keys, and `age -d -i identity.txt` open a key envelope by hand.
public enum Age {
    static let intro = "age-encryption.org/v1"
    static let x25519Label = Array("age-encryption.org/v1/X25519".utf8)
    static let chunkSize = 64 * 1024

    /// A public key, `age1...`.
    public struct Recipient: Hashable, Sendable {
        public var key: [UInt8]
        public var text: String { Bech32.encode(hrp: "age", data: key) }

        public static func parse(_ text: String) throws -> Recipient {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard let (hrp, data) = Bech32.decode(trimmed), hrp == "age", data.count == 32 else {
                throw ArchiveError(.malformed, "not an age X25519 recipient (age1..., as age-keygen prints it): \(trimmed.prefix(12))...")
            }
            return Recipient(key: data)
        }

        /// A recipients file: one `age1...` per line; blank lines and `#` comments are skipped.
        public static func parseFile(_ text: String) throws -> [Recipient] {
            try text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }.map(parse)
        }
    }

    /// A secret key, `AGE-SECRET-KEY-1...`.
    public struct Identity: Sendable {
        public var secret: [UInt8]
        public var recipient: Recipient

        public init(secret: [UInt8]) throws {
            self.secret = secret
            recipient = Recipient(key: try X25519.publicKey(secret: secret))
        }

        public static func generate() throws -> Identity { try Identity(secret: SecureRandom.bytes(32)) }

        public var text: String { Bech32.encode(hrp: "age-secret-key-", data: secret).uppercased() }

        /// An identity file as age-keygen writes it, with its public key in a comment.
        public var fileText: String {
            "# created: \(ISO8601DateFormatter().string(from: Date()))\n# public key: \(recipient.text)\n\(text)\n"
        }

        /// Every `AGE-SECRET-KEY-1...` line of an identity file (comments and blank lines skipped).
        public static func parseFile(_ text: String) throws -> [Identity] {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard !lines.isEmpty else { throw ArchiveError(.malformed, "the identity file holds no AGE-SECRET-KEY-1... line") }
            return try lines.map { line in
                guard let (hrp, data) = Bech32.decode(line), hrp == "age-secret-key-", data.count == 32 else {
                    throw ArchiveError(.malformed, "not an age X25519 identity (AGE-SECRET-KEY-1..., as age-keygen writes it)")
                }
                return try Identity(secret: data)
            }
        }
    }

    /// `plaintext` encrypted to every recipient (each can decrypt alone).
    public static func encrypt(_ plaintext: [UInt8], to recipients: [Recipient]) throws -> [UInt8] {
        guard !recipients.isEmpty else { throw ArchiveError(.malformed, "age needs at least one recipient") }
        let fileKey = SecureRandom.bytes(16)
        var header = intro + "\n"
        for recipient in recipients {
            let ephemeral = SecureRandom.bytes(32)
            let share = try X25519.publicKey(secret: ephemeral)
            let shared = try X25519.sharedSecret(secret: ephemeral, peer: recipient.key)
            let wrapKey = HKDF.derive(key: shared, salt: share + recipient.key, info: x25519Label, length: 32)
            let body = try ChaCha20Poly1305.seal(fileKey, key: wrapKey, nonce: [UInt8](repeating: 0, count: 12))
            header += "-> X25519 \(base64(share))\n" + wrapped(base64(body)) + "\n"
        }
        header += "---"
        let mac = HMACSHA256.authenticate(key: HKDF.derive(key: fileKey, salt: [], info: Array("header".utf8), length: 32), message: Array(header.utf8))
        header += " \(base64(mac))\n"
        let nonce = SecureRandom.bytes(16)
        let payloadKey = HKDF.derive(key: fileKey, salt: nonce, info: Array("payload".utf8), length: 32)
        var out = Array(header.utf8) + nonce
        var offset = 0
        var counter: UInt64 = 0
        repeat {
            let end = min(offset + chunkSize, plaintext.count)
            let last = end == plaintext.count
            out += try ChaCha20Poly1305.seal(Array(plaintext[offset..<end]), key: payloadKey, nonce: chunkNonce(counter, last: last))
            offset = end
            counter += 1
        } while offset < plaintext.count
        return out
    }

    /// The plaintext, or nil when none of `identities` is a recipient of the file. A file that one of
    /// them opens but whose header or payload does not authenticate is an error.
    public static func decrypt(_ file: [UInt8], identities: [Identity]) throws -> [UInt8]? {
        let (stanzas, headerEnd, mac) = try parseHeader(file)
        var fileKey: [UInt8]?
        search: for stanza in stanzas where stanza.type == "X25519" {
            guard stanza.arguments.count == 1, let share = unbase64(stanza.arguments[0]), share.count == 32, stanza.body.count == 32 else {
                throw ArchiveError(.malformed, "malformed X25519 stanza in the age header")
            }
            for identity in identities {
                guard let shared = try? X25519.sharedSecret(secret: identity.secret, peer: share) else { continue }
                let wrapKey = HKDF.derive(key: shared, salt: share + identity.recipient.key, info: x25519Label, length: 32)
                if let key = ChaCha20Poly1305.open(stanza.body, key: wrapKey, nonce: [UInt8](repeating: 0, count: 12)), key.count == 16 {
                    fileKey = key
                    break search
                }
            }
        }
        guard let fileKey else { return nil }
        let expected = HMACSHA256.authenticate(key: HKDF.derive(key: fileKey, salt: [], info: Array("header".utf8), length: 32),
                                               message: Array(file[..<headerEnd]))
        guard expected == mac else { throw ArchiveError(.authenticationFailed, "the age header does not authenticate (altered)") }
        let position = file[headerEnd...].firstIndex(of: 0x0A).map { $0 + 1 } ?? file.count
        guard file.count >= position + 16 else { throw ArchiveError(.malformed, "the age payload is truncated") }
        let nonce = Array(file[position..<position + 16])
        let payloadKey = HKDF.derive(key: fileKey, salt: nonce, info: Array("payload".utf8), length: 32)
        var plaintext: [UInt8] = []
        var offset = position + 16
        var counter: UInt64 = 0
        while true {
            let end = min(offset + chunkSize + ChaCha20Poly1305.tagSize, file.count)
            let last = end == file.count
            guard let chunk = ChaCha20Poly1305.open(Array(file[offset..<end]), key: payloadKey, nonce: chunkNonce(counter, last: last)) else {
                throw ArchiveError(.authenticationFailed, "the age payload does not authenticate (altered or truncated)")
            }
            plaintext += chunk
            if last { return plaintext }
            offset = end
            counter += 1
        }
    }

    struct Stanza {
        var type: String
        var arguments: [String]
        var body: [UInt8]
    }

    /// The stanzas, where "---" starts, and the header MAC.
    static func parseHeader(_ file: [UInt8]) throws -> ([Stanza], Int, [UInt8]) {
        var lines: [(text: String, start: Int)] = []
        var start = 0
        // The header is text up to the MAC line; the payload after it is binary.
        while start < file.count, let newline = file[start...].firstIndex(of: 0x0A) {
            let text = String(decoding: file[start..<newline], as: UTF8.self)
            lines.append((text, start))
            start = newline + 1
            if text.hasPrefix("--- ") { break }
        }
        guard lines.first?.text == intro else { throw ArchiveError(.malformed, "not an age file (no \(intro) line)") }
        var stanzas: [Stanza] = []
        var index = 1
        while index < lines.count {
            let line = lines[index].text
            if line.hasPrefix("--- ") {
                guard let mac = unbase64(String(line.dropFirst(4))), mac.count == 32 else { throw ArchiveError(.malformed, "malformed age header MAC") }
                return (stanzas, lines[index].start + 3, mac)
            }
            guard line.hasPrefix("-> ") else { throw ArchiveError(.malformed, "malformed age header line") }
            let fields = line.dropFirst(3).split(separator: " ").map(String.init)
            guard let type = fields.first else { throw ArchiveError(.malformed, "an age stanza without a type") }
            var body = ""
            index += 1
            while index < lines.count {
                let bodyLine = lines[index].text
                index += 1
                body += bodyLine
                if bodyLine.count < 64 { break }
            }
            guard let bytes = unbase64(body) else { throw ArchiveError(.malformed, "malformed age stanza body") }
            stanzas.append(Stanza(type: type, arguments: Array(fields.dropFirst()), body: bytes))
        }
        throw ArchiveError(.malformed, "the age header has no MAC line")
    }

    static func chunkNonce(_ counter: UInt64, last: Bool) -> [UInt8] {
        [0, 0, 0] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: counter >> (8 * UInt64($0))) } + [last ? 1 : 0]
    }

    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    static func unbase64(_ text: String) -> [UInt8]? {
        guard !text.contains("=") else { return nil }  // age uses unpadded base64 only
        let padded = text + String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: padded).map { [UInt8]($0) }
    }

    /// Stanza bodies wrap at 64 columns, and the last line is always shorter (empty if need be).
    static func wrapped(_ text: String) -> String {
        var lines: [String] = []
        var rest = Substring(text)
        while rest.count >= 64 {
            lines.append(String(rest.prefix(64)))
            rest = rest.dropFirst(64)
        }
        lines.append(String(rest))
        return lines.joined(separator: "\n")
    }
}

/// Bech32 (BIP 173) without its 90-character limit, as age uses it.
enum Bech32 {
    static let charset = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l")

    static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ffffff) << 5 ^ UInt32(value)
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 { checksum ^= generator[i] }
        }
        return checksum
    }

    static func expand(_ hrp: String) -> [UInt8] {
        let bytes = Array(hrp.utf8)
        return bytes.map { $0 >> 5 } + [0] + bytes.map { $0 & 31 }
    }

    static func convert(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var accumulator = 0, bits = 0
        var out: [UInt8] = []
        let maximum = (1 << to) - 1
        for value in data {
            accumulator = (accumulator << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((accumulator >> bits) & maximum))
            }
        }
        if pad {
            if bits > 0 { out.append(UInt8((accumulator << (to - bits)) & maximum)) }
        } else if bits >= from || (accumulator << (to - bits)) & maximum != 0 {
            return nil
        }
        return out
    }

    static func encode(hrp: String, data: [UInt8]) -> String {
        let values = convert(data, from: 8, to: 5, pad: true)!
        let mod = polymod(expand(hrp) + values + [0, 0, 0, 0, 0, 0]) ^ 1
        let checksum = (0..<6).map { UInt8((mod >> (5 * (5 - UInt32($0)))) & 31) }
        return hrp + "1" + String((values + checksum).map { charset[Int($0)] })
    }

    static func decode(_ text: String) -> (String, [UInt8])? {
        guard text == text.lowercased() || text == text.uppercased() else { return nil }
        let lower = text.lowercased()
        guard let separator = lower.lastIndex(of: "1") else { return nil }
        let hrp = String(lower[..<separator])
        var values: [UInt8] = []
        for character in lower[lower.index(after: separator)...] {
            guard let index = charset.firstIndex(of: character) else { return nil }
            values.append(UInt8(index))
        }
        guard !hrp.isEmpty, values.count >= 6, polymod(expand(hrp) + values) == 1,
              let data = convert(Array(values.dropLast(6)), from: 5, to: 8, pad: false) else { return nil }
        return (hrp, data)
    }
}
