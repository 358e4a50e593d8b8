internal import COpenSSL

/// Random bytes from OpenSSL's CSPRNG (keys, nonces, salts, id suffixes).
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        precondition(RAND_bytes(&out, Int32(count)) == 1, "OpenSSL RAND_bytes failed")
        return out
    }

    public static func hex(_ count: Int) -> String { Hex.encode(bytes(count)) }
}
