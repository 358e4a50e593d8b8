internal import COpenSSL

/// ChaCha20-Poly1305 (RFC 8439), one message per call, no associated data: what age's format uses.
public enum ChaCha20Poly1305 {
    public static let tagSize = 16
    public static let nonceSize = 12

    /// Ciphertext followed by the 16-byte tag.
    public static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8]) throws -> [UInt8] {
        guard key.count == 32, nonce.count == nonceSize else { throw CryptoError("ChaCha20-Poly1305 takes a 32-byte key and a 12-byte nonce") }
        guard let context = EVP_CIPHER_CTX_new() else { throw CryptoError("out of memory") }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: plaintext.count + tagSize)
        var length: Int32 = 0
        let ok = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard EVP_EncryptInit_ex(context, EVP_chacha20_poly1305(), nil, key, nonce) == 1 else { return false }
            if !plaintext.isEmpty {
                guard EVP_EncryptUpdate(context, buffer.baseAddress, &length, plaintext, Int32(plaintext.count)) == 1 else { return false }
            }
            var final: Int32 = 0
            guard EVP_EncryptFinal_ex(context, buffer.baseAddress! + plaintext.count, &final) == 1 else { return false }
            return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(tagSize), buffer.baseAddress! + plaintext.count) == 1
        }
        guard ok else { throw CryptoError("ChaCha20-Poly1305 encryption failed") }
        return out
    }

    /// The plaintext, or nil when the tag does not authenticate (wrong key, nonce or altered bytes).
    public static func open(_ sealed: [UInt8], key: [UInt8], nonce: [UInt8]) -> [UInt8]? {
        guard key.count == 32, nonce.count == nonceSize, sealed.count >= tagSize, let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let cipherCount = sealed.count - tagSize
        var tag = Array(sealed[cipherCount...])
        var out = [UInt8](repeating: 0, count: cipherCount)
        var length: Int32 = 0
        let ok = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard EVP_DecryptInit_ex(context, EVP_chacha20_poly1305(), nil, key, nonce) == 1 else { return false }
            if cipherCount > 0 {
                guard EVP_DecryptUpdate(context, buffer.baseAddress, &length, sealed, Int32(cipherCount)) == 1 else { return false }
            }
            guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(tagSize), &tag) == 1 else { return false }
            var final: Int32 = 0
            var scratch = [UInt8](repeating: 0, count: 16)
            return EVP_DecryptFinal_ex(context, &scratch, &final) == 1
        }
        return ok ? out : nil
    }
}
