import Foundation
import Common

public enum DRKitVersion {
    public static let current = "0.1.0"
}
