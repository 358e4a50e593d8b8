internal import COpenSSL

/// Ed25519 signatures (RFC 8032) over OpenSSL's raw keys: a 32-byte seed signs, a 32-byte public key verifies.
public enum Ed25519 {
    public static let seedSize = 32
    public static let publicKeySize = 32
    public static let signatureSize = 64

    public static func publicKey(seed: [UInt8]) throws -> [UInt8] {
        let key = try privateKey(seed)
        defer { EVP_PKEY_free(key) }
        var out = [UInt8](repeating: 0, count: publicKeySize)
        var length = publicKeySize
        guard EVP_PKEY_get_raw_public_key(key, &out, &length) == 1, length == publicKeySize else {
            throw CryptoError("Ed25519 public key derivation failed")
        }
        return out
    }

    public static func sign(_ message: [UInt8], seed: [UInt8]) throws -> [UInt8] {
        let key = try privateKey(seed)
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw CryptoError("out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: signatureSize)
        var length = signatureSize
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == signatureSize else {
            throw CryptoError("Ed25519 signing failed")
        }
        return signature
    }

    /// False for a wrong signature, a wrong key or a malformed public key.
    public static func verify(_ signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == signatureSize, publicKey.count == publicKeySize,
              let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, publicKey.count) else { return false }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        return EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1
            && EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
    }

    private static func privateKey(_ seed: [UInt8]) throws -> OpaquePointer {
        guard seed.count == seedSize, let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            throw CryptoError("an Ed25519 secret key is a 32-byte seed")
        }
        return key
    }
}
