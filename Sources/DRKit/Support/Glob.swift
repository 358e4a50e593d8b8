import Foundation
import Archive
import Common
import PostgresClient

/// Shell-style globs (`*`, `?`, `[...]`) over object names.
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
