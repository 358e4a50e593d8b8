import Archive
import ArgumentParser
import Common
import DRKit
import Foundation

enum JSONText {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONCoding.encoder.encode(value), as: UTF8.self)
    }
}
