import XCTest
@testable import Common

/// BLAKE2b against Python's hashlib (RFC 7693's reference), Ed25519 against RFC 8032's first vector.
final class SignatureCryptoTests: XCTestCase {
    func testBLAKE2bMatchesTheReferenceAtEveryLengthAndBlockBoundary() {
        let cases: [([UInt8], Int, String)] = [
            (Array("abc".utf8), 64, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"),
            (Array("abc".utf8), 32, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"),
            ([UInt8](repeating: 97, count: 200), 32, "6b6e59aaf00eb730cf93de53560846722184bbd92f8368c21ffa95380c2f9fe6"),
            ([], 32, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"),
            ([UInt8](repeating: 97, count: 128), 64, "fc6c71f688f43ea7d60817478808f3cac753e61571865c95adbc2d9122c943a76b92c2cb1047ef3fe7bf6e436ec1d0a99a9e5b216780bf7fed9d7ca91d3a8f3b"),
        ]
        for (input, length, expected) in cases {
            XCTAssertEqual(Hex.encode(BLAKE2b.hash(input, length: length)), expected, "\(input.count) bytes, digest \(length)")
        }
        // Fed in pieces, the same digest.
        var hasher = BLAKE2b(length: 32)
        for _ in 0..<200 { hasher.update([97]) }
        XCTAssertEqual(Hex.encode(hasher.finalize()), cases[2].2)
    }

    func testEd25519MatchesRFC8032AndRefusesAnyChange() throws {
        let seed = Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!
        let publicKey = try Ed25519.publicKey(seed: seed)
        XCTAssertEqual(Hex.encode(publicKey), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let signature = try Ed25519.sign([], seed: seed)
        XCTAssertEqual(Hex.encode(signature), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        XCTAssertTrue(Ed25519.verify(signature, of: [], publicKey: publicKey))
        XCTAssertFalse(Ed25519.verify(signature, of: [0], publicKey: publicKey))
        var flipped = signature
        flipped[10] ^= 1
        XCTAssertFalse(Ed25519.verify(flipped, of: [], publicKey: publicKey))
        XCTAssertFalse(Ed25519.verify(signature, of: [], publicKey: try Ed25519.publicKey(seed: [UInt8](repeating: 7, count: 32))))
    }
}
