import XCTest
@testable import Archive
import Common

/// The age format's own rules, without the age tool (AgeRecipientTests checks against it): sizes at
/// the 64 KiB chunk boundaries, several recipients, a stranger, tampering, bech32 strings.
final class AgeTests: XCTestCase {
    func testRoundTripsAtChunkBoundariesForEveryRecipient() throws {
        let a = try Age.Identity.generate(), b = try Age.Identity.generate(), stranger = try Age.Identity.generate()
        for size in [0, 1, 32, 65_535, 65_536, 65_537, 200_000] {
            let plaintext = SecureRandom.bytes(size)
            let file = try Age.encrypt(plaintext, to: [a.recipient, b.recipient])
            XCTAssertEqual(try Age.decrypt(file, identities: [a]), plaintext, "size \(size)")
            XCTAssertEqual(try Age.decrypt(file, identities: [stranger, b]), plaintext, "size \(size)")
            XCTAssertNil(try Age.decrypt(file, identities: [stranger]), "size \(size)")
        }
    }

    func testTamperingIsAnErrorNotAnotherPlaintext() throws {
        let a = try Age.Identity.generate()
        let file = try Age.encrypt(Array("the data key, 32 bytes long!!!!!".utf8), to: [a.recipient])
        var payload = file
        payload[payload.count - 5] ^= 1
        XCTAssertThrowsError(try Age.decrypt(payload, identities: [a]))
        var truncated = file
        truncated.removeLast()
        XCTAssertThrowsError(try Age.decrypt(truncated, identities: [a]))
        // A changed header (an extra stanza) breaks the header MAC.
        let text = String(decoding: file, as: UTF8.self)
        let forged = text.replacingOccurrences(of: "\n---", with: "\n-> X25519 \(Age.base64([UInt8](repeating: 9, count: 32)))\n\(Age.base64([UInt8](repeating: 1, count: 32)))\n---")
        XCTAssertThrowsError(try Age.decrypt(Array(forged.utf8), identities: [a]))
        XCTAssertThrowsError(try Age.decrypt(Array("not age\n".utf8), identities: [a]))
    }

    func testKeysReadBackAsTheyWereWrittenAndBadOnesAreRefused() throws {
        let identity = try Age.Identity.generate()
        XCTAssertTrue(identity.recipient.text.hasPrefix("age1"))
        XCTAssertEqual(identity.recipient.text.count, 62)
        XCTAssertTrue(identity.text.hasPrefix("AGE-SECRET-KEY-1"))
        XCTAssertEqual(try Age.Recipient.parse(identity.recipient.text), identity.recipient)
        let parsed = try Age.Identity.parseFile(identity.fileText)
        XCTAssertEqual(parsed.map(\.secret), [identity.secret])
        var wrong = Array(identity.recipient.text)
        wrong[10] = wrong[10] == "q" ? "p" : "q"
        XCTAssertThrowsError(try Age.Recipient.parse(String(wrong)), "checksum")
        XCTAssertThrowsError(try Age.Recipient.parse(identity.text), "an identity is not a recipient")
        XCTAssertThrowsError(try Age.Identity.parseFile("# only a comment\n"))
        XCTAssertEqual(try Age.Recipient.parseFile("# escrow\n\n\(identity.recipient.text)\n"), [identity.recipient])
    }
}
