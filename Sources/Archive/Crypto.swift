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

public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        precondition(RAND_bytes(&out, Int32(count)) == 1, "OpenSSL RAND_bytes failed")
        return out
    }

    public static func hex(_ count: Int) -> String { Hex.encode(bytes(count)) }
}

/// Parameters of scrypt as stored in a manifest; defaults follow the interactive-login profile.
public struct ScryptParameters: Codable, Equatable, Sendable {
    public var n: UInt64
    public var r: UInt64
    public var p: UInt64
    public var salt: String

    public init(n: UInt64 = 1 << 15, r: UInt64 = 8, p: UInt64 = 1, salt: [UInt8] = SecureRandom.bytes(16)) {
        self.n = n
        self.r = r
        self.p = p
        self.salt = Hex.encode(salt)
    }

    public func deriveKey(passphrase: String) throws -> [UInt8] {
        guard let saltBytes = Hex.decode(salt) else { throw ArchiveError(.malformed, "scrypt salt is not hex") }
        var out = [UInt8](repeating: 0, count: 32)
        let pass = Array(passphrase.utf8)
        let maxMemory = 128 * n * r * p + (64 << 20)
        let ok = pass.withUnsafeBufferPointer { pw in
            saltBytes.withUnsafeBufferPointer { s in
                pw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: pw.count) { pwChars in
                    EVP_PBE_scrypt(pwChars, pw.count, s.baseAddress, s.count, n, r, p, maxMemory, &out, 32)
                }
            }
        }
        guard ok == 1 else { throw ArchiveError(.library, "scrypt key derivation failed") }
        return out
    }
}

/// AES-256-GCM with one key and many (nonce, message) pairs; the context is reused between calls.
public final class AESGCM {
    public static let tagSize = 16
    public static let nonceSize = 12
    private let encryptContext: OpaquePointer
    private let decryptContext: OpaquePointer

    public init(key: [UInt8]) throws {
        guard key.count == 32 else { throw ArchiveError(.library, "AES-256-GCM needs a 32-byte key") }
        encryptContext = EVP_CIPHER_CTX_new()
        decryptContext = EVP_CIPHER_CTX_new()
        guard EVP_EncryptInit_ex(encryptContext, EVP_aes_256_gcm(), nil, key, nil) == 1,
              EVP_DecryptInit_ex(decryptContext, EVP_aes_256_gcm(), nil, key, nil) == 1 else {
            throw ArchiveError(.library, "OpenSSL could not initialise AES-256-GCM")
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(encryptContext)
        EVP_CIPHER_CTX_free(decryptContext)
    }

    /// Appends ciphertext followed by the 16-byte tag to `output`.
    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8], into output: inout [UInt8]) throws {
        guard EVP_EncryptInit_ex(encryptContext, nil, nil, nil, nonce) == 1 else {
            throw ArchiveError(.library, "AES-GCM nonce setup failed")
        }
        var outLength: Int32 = 0
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(encryptContext, nil, &outLength, aad, Int32(aad.count)) == 1 else {
                throw ArchiveError(.library, "AES-GCM AAD failed")
            }
        }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: plaintext.count + AESGCM.tagSize))
        let ok: Bool = output.withUnsafeMutableBufferPointer { buffer in
            let out = buffer.baseAddress! + start
            if plaintext.count > 0 {
                guard EVP_EncryptUpdate(encryptContext, out, &outLength,
                                        plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                        Int32(plaintext.count)) == 1 else { return false }
            }
            var finalLength: Int32 = 0
            guard EVP_EncryptFinal_ex(encryptContext, out + plaintext.count, &finalLength) == 1 else { return false }
            return EVP_CIPHER_CTX_ctrl(encryptContext, EVP_CTRL_GCM_GET_TAG, Int32(AESGCM.tagSize),
                                       out + plaintext.count) == 1
        }
        guard ok else { throw ArchiveError(.library, "AES-GCM encryption failed") }
    }

    /// Authenticates and decrypts `sealed` (ciphertext + tag), appending the plaintext to `output`.
    /// Nothing is appended when authentication fails.
    public func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8], into output: inout [UInt8]) -> Bool {
        guard sealed.count >= AESGCM.tagSize else { return false }
        let cipherCount = sealed.count - AESGCM.tagSize
        guard EVP_DecryptInit_ex(decryptContext, nil, nil, nil, nonce) == 1 else { return false }
        var outLength: Int32 = 0
        if !aad.isEmpty {
            guard EVP_DecryptUpdate(decryptContext, nil, &outLength, aad, Int32(aad.count)) == 1 else { return false }
        }
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: cipherCount))
        let input = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let ok: Bool = output.withUnsafeMutableBufferPointer { buffer in
            let out = buffer.baseAddress! + start
            if cipherCount > 0 {
                guard EVP_DecryptUpdate(decryptContext, out, &outLength, input, Int32(cipherCount)) == 1 else { return false }
            }
            var tag = [UInt8](UnsafeBufferPointer(start: input + cipherCount, count: AESGCM.tagSize))
            guard EVP_CIPHER_CTX_ctrl(decryptContext, EVP_CTRL_GCM_SET_TAG, Int32(AESGCM.tagSize), &tag) == 1 else { return false }
            var finalLength: Int32 = 0
            return EVP_DecryptFinal_ex(decryptContext, out + cipherCount, &finalLength) == 1
        }
        if !ok { output.removeSubrange(start...) }
        return ok
    }

    public func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        try plaintext.withUnsafeBytes { try seal($0, nonce: nonce, aad: aad, into: &out) }
        return out
    }

    public func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        let ok = sealed.withUnsafeBytes { open($0, nonce: nonce, aad: aad, into: &out) }
        return ok ? out : nil
    }
}
