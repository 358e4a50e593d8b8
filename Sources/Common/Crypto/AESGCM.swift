internal import COpenSSL

/// AES-256-GCM with one key and many (nonce, message) pairs; the context is reused between calls.
public final class AESGCM {
    public static let tagSize = 16
    public static let nonceSize = 12
    private let encryptContext: OpaquePointer
    private let decryptContext: OpaquePointer

    public init(key: [UInt8]) throws {
        guard key.count == 32 else { throw CryptoError("AES-256-GCM needs a 32-byte key") }
        encryptContext = EVP_CIPHER_CTX_new()
        decryptContext = EVP_CIPHER_CTX_new()
        guard EVP_EncryptInit_ex(encryptContext, EVP_aes_256_gcm(), nil, key, nil) == 1,
              EVP_DecryptInit_ex(decryptContext, EVP_aes_256_gcm(), nil, key, nil) == 1 else {
            throw CryptoError("OpenSSL could not initialise AES-256-GCM")
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(encryptContext)
        EVP_CIPHER_CTX_free(decryptContext)
    }

    /// Appends ciphertext followed by the 16-byte tag to `output`.
    public func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8], into output: inout [UInt8]) throws {
        guard EVP_EncryptInit_ex(encryptContext, nil, nil, nil, nonce) == 1 else {
            throw CryptoError("AES-GCM nonce setup failed")
        }
        var outLength: Int32 = 0
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(encryptContext, nil, &outLength, aad, Int32(aad.count)) == 1 else {
                throw CryptoError("AES-GCM AAD failed")
            }
        }
        let start = output.count
        output.append(contentsOf: [UInt8](repeating: 0, count: plaintext.count + AESGCM.tagSize))
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
        guard ok else { throw CryptoError("AES-GCM encryption failed") }
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
        output.append(contentsOf: [UInt8](repeating: 0, count: cipherCount))
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
