import Foundation
import Archive
import Common
import ObjectStorage
import PostgresClient

public enum DRKitVersion {
    public static let current = "0.1.0"
}
