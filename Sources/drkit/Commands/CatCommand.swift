import ArgumentParser
import Common
import DRKit
import Foundation

struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decrypt one object of a backup to stdout, still compressed: the manual escape hatch.",
        discussion: """
            The output is the object's codec stream: zstd for .zst names (zstd -dc), gzip for .gz (gunzip -c), \
            plain text for backups taken with --compress none. It stops with a non-zero exit at the first segment \
            that fails authentication, so use set -o pipefail. Example: set -o pipefail; drkit cat latest \
            schema/pre-data.sql.zst.enc --repo /backups --key-file k | zstd -dc | psql newdb. \
            Object names are listed in docs/FORMAT.md; `ls <repo>/<backup-id>/data` shows them for a local repository.
            """)

    @Argument(help: "Backup id (or unique prefix), or `latest`.")
    var backup: String
    @Argument(help: "Object name inside the backup, e.g. data/00000.0000.copy.zst.enc")
    var object: String
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var keys: KeyFlags
    @Option(name: .long, help: ArgumentHelp("The backup's data key itself, 32 raw bytes: what `age -d -i IDENTITY <backup>/keys/age-*.age` prints (docs/runbooks/restore-by-hand.md).", valueName: "path"))
    var dataKeyFile: String?

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open(create: false)
            var options = keys.keyOptions
            options.dataKeyFile = dataKeyFile
            try ObjectCat.run(repository: repo, reference: backup, object: object, keys: options,
                              output: FileDescriptorSink(fd: STDOUT_FILENO))
        }
    }
}
