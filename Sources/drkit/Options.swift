import ArgumentParser
import DRKit

struct RepositoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Backup repository: a directory path or file:///path.", valueName: "repo"))
    var repo: String
}

struct KeyFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("File with the 32-byte key-encryption key (written by `drkit key generate`). Without this or --passphrase-env, DRKIT_KEY is used.", valueName: "path"))
    var keyFile: String?

    @Option(name: .long, help: ArgumentHelp("Name of the environment variable that holds a passphrase (stretched with scrypt).", valueName: "VAR"))
    var passphraseEnv: String?

    var keyOptions: KeyOptions { KeyOptions(keyFile: keyFile, passphraseEnv: passphraseEnv) }
}

struct OutputFlags: ParsableArguments {
    @Flag(name: .long, help: "Print the result as JSON on stdout.")
    var json = false

    @Flag(name: .long, help: "No progress or notes on stderr (errors are still printed).")
    var quiet = false
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
