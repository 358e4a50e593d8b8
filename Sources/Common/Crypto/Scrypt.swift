internal import COpenSSL

/// scrypt (RFC 7914) over OpenSSL. Callers bound the cost parameters before calling: the work is
/// proportional to n × r × p and the memory to 128 × n × r.
public enum Scrypt {
    public static func deriveKey(passphrase: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64, length: Int = 32) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let (memory, overflow) = (128 * r).multipliedReportingOverflow(by: n)
        guard !overflow, memory <= UInt64(Int.max) - (64 << 20) else { throw CryptoError("scrypt parameters need more memory than can be addressed") }
        let maxMemory = memory + (64 << 20)
        let ok = passphrase.withUnsafeBufferPointer { pw in
            salt.withUnsafeBufferPointer { s in
                pw.withMemoryRebound(to: CChar.self) { pwChars in
                    EVP_PBE_scrypt(pwChars.baseAddress, pwChars.count, s.baseAddress, s.count, n, r, p, maxMemory, &out, length)
                }
            }
        }
        guard ok == 1 else { throw CryptoError("scrypt key derivation failed") }
        return out
    }
}
