import Foundation
import CBuildInfo

/// The version comes from the repository's VERSION file (compiled in); the commit and build date are
/// stamped by scripts/package.sh, so a plain `swift build` says it is a development build.
public enum DRKitVersion {
    public static let current = text(drkit_build_version()) ?? "unknown"
    public static let commit = text(drkit_build_commit())
    public static let buildDate = text(drkit_build_date())

    /// What `drkit --version` prints.
    public static var description: String {
        guard let commit else { return "\(current) (development build: no commit or date stamped)" }
        return "\(current) (commit \(commit), built \(buildDate ?? "unknown"))"
    }

    private static func text(_ pointer: UnsafePointer<CChar>) -> String? {
        let value = String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
        return value.isEmpty ? nil : value
    }
}
