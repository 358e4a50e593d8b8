import XCTest
import Foundation
@testable import Archive
import Common

final class CryptoTests: XCTestCase {
    struct HKDFVector: Decodable {
        var source: String
        var ikm: String
        var salt: String
        var info: String
        var length: Int
        var okm: String
    }

    func testHKDFMatchesRFC5869Vectors() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Vectors/hkdf-sha256", withExtension: "json"))
        let vectors = try JSONDecoder().decode([HKDFVector].self, from: Data(contentsOf: url))
        XCTAssertEqual(vectors.count, 3)
        for v in vectors {
            let okm = HKDF.derive(key: Hex.decode(v.ikm)!, salt: Hex.decode(v.salt)!, info: Hex.decode(v.info)!, length: v.length)
            XCTAssertEqual(Hex.encode(okm), v.okm, v.source)
        }
    }

    func testSHA256KnownAnswer() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testHMACKnownAnswerRFC4231Case2() {
        let mac = HMACSHA256.authenticate(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        XCTAssertEqual(Hex.encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testAESGCMRejectsTamperedCiphertext() throws {
        let gcm = try AESGCM(key: [UInt8](repeating: 7, count: 32))
        let nonce = [UInt8](repeating: 1, count: 12)
        var sealed = try gcm.seal(Array("hello".utf8), nonce: nonce, aad: [9])
        XCTAssertEqual(gcm.open(sealed, nonce: nonce, aad: [9]), Array("hello".utf8))
        XCTAssertNil(gcm.open(sealed, nonce: nonce, aad: [8]), "AAD is authenticated")
        sealed[0] ^= 1
        XCTAssertNil(gcm.open(sealed, nonce: nonce, aad: [9]))
    }
}
