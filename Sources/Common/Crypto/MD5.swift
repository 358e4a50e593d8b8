internal import COpenSSL
import Foundation

/// MD5, only for S3's Content-MD5 header (DeleteObjects requires it); never for integrity.
public enum MD5 {
    public static func base64(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 0
        let context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_md5(), nil)
        bytes.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        EVP_DigestFinal_ex(context, &digest, &length)
        EVP_MD_CTX_free(context)
        return Data(digest).base64EncodedString()
    }
}
