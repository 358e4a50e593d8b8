internal import COpenSSL

/// Incremental SHA-256 over OpenSSL's EVP interface.
public final class SHA256 {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    public static func hex(_ bytes: [UInt8]) -> String { Hex.encode(hash(bytes)) }
    public static func hex(_ text: String) -> String { hex(Array(text.utf8)) }
}

public enum HMACSHA256 {
    public static func authenticate(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count),
                         m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count, &out, &length)
            }
        }
        return out
    }
}

/// HKDF-SHA256 (RFC 5869), written over HMAC so it needs no OpenSSL provider parameters.
public enum HKDF {
    public static func derive(key: [UInt8], salt: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        let prk = HMACSHA256.authenticate(key: salt.isEmpty ? [UInt8](repeating: 0, count: 32) : salt, message: key)
        var output: [UInt8] = []
        var previous: [UInt8] = []
        var counter: UInt8 = 1
        while output.count < length {
            previous = HMACSHA256.authenticate(key: prk, message: previous + info + [counter])
            output += previous
            counter += 1
        }
        return Array(output.prefix(length))
    }
}
