import ArgumentParser
import Common
import DRKit
import Foundation

/// For commands whose contract is 0 pass, 1 fail, 2 any error; codes in `kept` pass through (a drill
/// keeps 5: a backup refused as forged or damaged is an integrity finding, not an error of the run).
func runWithCheckExitCodes(keeping kept: Set<Int32> = [], _ body: () throws -> Void) throws {
    do { try runReportingErrors(body) } catch let exit as ExitCode where exit.rawValue > 1 && !kept.contains(exit.rawValue) {
        throw ExitCode(2)
    }
}

/// Runs a command body, turning any failure into one `drkit: error:` line and its exit code.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as DRKitError {
        Console.shared.endStatus()
        printError(error.message)
        throw ExitCode(error.code.exitCode)
    } catch let error as ExitCode {
        throw error
    } catch {
        let wrapped = DRKitError.wrap(error)
        printError(wrapped.message)
        throw ExitCode(wrapped.code.exitCode)
    }
}

func printError(_ message: String) {
    let line = message.split(whereSeparator: \.isNewline).joined(separator: "; ")
    FileHandle.standardError.write(Data("drkit: error: \(line)\n".utf8))
}

import Foundation
