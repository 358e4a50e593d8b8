internal import COpenSSL

/// X25519 (RFC 7748) over OpenSSL's raw keys: 32-byte secret scalars and public points.
public enum X25519 {
    public static let keySize = 32

    public static func publicKey(secret: [UInt8]) throws -> [UInt8] {
        let key = try privateKey(secret)
        defer { EVP_PKEY_free(key) }
        var out = [UInt8](repeating: 0, count: keySize)
        var length = keySize
        guard EVP_PKEY_get_raw_public_key(key, &out, &length) == 1, length == keySize else { throw CryptoError("X25519 public key derivation failed") }
        return out
    }

    /// The shared secret of `secret` and `peer`; refuses the all-zero result of a low-order point.
    public static func sharedSecret(secret: [UInt8], peer: [UInt8]) throws -> [UInt8] {
        let key = try privateKey(secret)
        defer { EVP_PKEY_free(key) }
        guard peer.count == keySize, let peerKey = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, peer, peer.count) else {
            throw CryptoError("an X25519 public key is 32 bytes")
        }
        defer { EVP_PKEY_free(peerKey) }
        guard let context = EVP_PKEY_CTX_new(key, nil) else { throw CryptoError("out of memory") }
        defer { EVP_PKEY_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: keySize)
        var length = keySize
        guard EVP_PKEY_derive_init(context) == 1, EVP_PKEY_derive_set_peer(context, peerKey) == 1,
              EVP_PKEY_derive(context, &out, &length) == 1, length == keySize, out.contains(where: { $0 != 0 }) else {
            throw CryptoError("X25519 key agreement failed")
        }
        return out
    }

    private static func privateKey(_ secret: [UInt8]) throws -> OpaquePointer {
        guard secret.count == keySize, let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nil, secret, secret.count) else {
            throw CryptoError("an X25519 secret key is 32 bytes")
        }
        return key
    }
}
