import Foundation
import Common

/// Shell-style globs (`*`, `?`, `[...]`) over object names.
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
