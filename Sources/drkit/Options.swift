import Archive
import ObjectStorage
import ArgumentParser
import DRKit
import Foundation

struct RepositoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Backup repository: a directory path, file:///path, or s3://bucket/prefix[?endpoint=URL&region=R&profile=P&addressing=path|virtual] (URL options win over the --s3-* flags; never put secrets on it).", valueName: "repo"))
    var repo: String
    @OptionGroup var s3: S3Flags

    func open(create: Bool) throws -> Repository {
        try Repository.open(repo, create: create, s3: s3.options)
    }
}

/// A repository location that cannot name a store is exit 2 before any work starts (never echoing
/// what it refuses, which may be a secret). Called first thing in `run`, so the one error line is drkit's.
func checkRepositoryLocation(_ location: String, flag: String) throws {
    do { try StorageRegistry.check(location) } catch let error as StorageError { throw DRKitError(.usage, "\(flag): \(error.message)") }
}

struct S3Flags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS for the region).", valueName: "url"))
    var s3Endpoint: String?
    @Option(name: .long, help: ArgumentHelp("S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1).", valueName: "region"))
    var s3Region: String?
    @Flag(name: .long, inversion: .prefixedNo, help: "Path-style S3 addressing (default: path-style for IP and localhost endpoints, virtual-hosted otherwise).")
    var s3PathStyle: Bool?
    @Option(name: .long, help: ArgumentHelp("Multipart part size in MiB (grows automatically past 1000 parts).", valueName: "MiB"))
    var partSize: Int?
    @Option(name: .long, help: "Parts uploaded at once per object.")
    var uploadConcurrency: Int?
    @Flag(name: .long, help: "Print one line per S3 request to stderr (method, URL, status, time; never credentials).")
    var verbose = false

    var options: StorageSettings {
        var o = StorageSettings()
        o.endpoint = s3Endpoint
        o.region = s3Region
        o.pathStyle = s3PathStyle
        o.partSizeMiB = partSize
        o.uploadConcurrency = uploadConcurrency
        if verbose { o.trace = { Console.shared.note("s3: \($0)") } }
        return o
    }

    func validate() throws {
        if let partSize, partSize < 5 { throw ValidationError("--part-size must be at least 5 MiB (S3's minimum)") }
        if let uploadConcurrency, !(1...64).contains(uploadConcurrency) { throw ValidationError("--upload-concurrency must be between 1 and 64") }
    }
}

struct KeyFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("File with the 32-byte key-encryption key (written by `drkit key generate`). Without this or --passphrase-env, DRKIT_KEY is used.", valueName: "path"))
    var keyFile: String?

    @Option(name: .long, help: ArgumentHelp("Name of the environment variable that holds a passphrase (stretched with scrypt).", valueName: "VAR"))
    var passphraseEnv: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("age identity file (AGE-SECRET-KEY-1..., as `age-keygen` or `drkit key generate --type age` writes it) that opens backups sealed to its recipient (repeatable).", valueName: "path"))
    var identity: [String] = []

    var keyOptions: KeyOptions {
        var options = KeyOptions(keyFile: keyFile, passphraseEnv: passphraseEnv)
        options.identityFiles = identity
        return options
    }

    /// The key that encrypts what a command writes (`what`: "the backup"), or nil with `--no-encrypt`,
    /// which must be said: neither a key and --no-encrypt together nor nothing at all is accepted.
    func encryptionKey(noEncrypt: Bool, what: String, recipients: [Age.Recipient] = []) throws -> KeySource? {
        let key = try keyOptions.resolve()
        if noEncrypt && (key != nil || !recipients.isEmpty) { throw DRKitError(.usage, "--no-encrypt given together with a key or recipients; choose one") }
        if !noEncrypt && key == nil && recipients.isEmpty {
            throw DRKitError(.usage, "no key: give --key-file, DRKIT_KEY, --passphrase-env or --recipient (or --no-encrypt to store \(what) in the clear)")
        }
        return key
    }
}

/// `--recipient age1...` / `--recipients-file FILE`: seal what a command writes to age public keys.
struct RecipientFlags: ParsableArguments {
    init() {}
    init(recipient: [String], recipientsFile: [String]) {
        self.recipient = recipient
        self.recipientsFile = recipientsFile
    }

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("age public key (age1...) that can open the backup with its identity (repeatable; each opens it alone). The host then needs no key that decrypts.", valueName: "age1..."))
    var recipient: [String] = []
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("File of age recipients, one age1... per line (# comments).", valueName: "path"))
    var recipientsFile: [String] = []

    func recipients() throws -> [Age.Recipient] {
        var all: [Age.Recipient] = []
        do {
            all += try recipient.map(Age.Recipient.parse)
            for path in recipientsFile {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DRKitError(.usage, "cannot read recipients file \(path)") }
                let parsed = try Age.Recipient.parseFile(text)
                if parsed.isEmpty { throw DRKitError(.usage, "recipients file \(path) names no recipient") }
                all += parsed
            }
        } catch let error as DRKitError { throw error } catch { throw DRKitError(.usage, "\(error)") }
        var seen = Set<Age.Recipient>()
        return all.filter { seen.insert($0).inserted }
    }
}

struct OutputFlags: ParsableArguments {
    @Flag(name: .long, help: "Print the result as JSON on stdout.")
    var json = false

    @Flag(name: .long, help: "No progress or notes on stderr (errors are still printed).")
    var quiet = false
}

/// `--max-rate RATE`: the stored bytes a command reads or writes, at most this fast (all workers together).
struct RateFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read or write stored bytes at most this fast, e.g. 50MiB/s or 800KB/s (with --jobs 1, the way to spare a busy production source or link).", valueName: "rate"))
    var maxRate: String?

    func limiter() throws -> RateLimiter? {
        guard let maxRate else { return nil }
        guard let limiter = RateLimiter.parse(maxRate) else {
            throw DRKitError(.usage, "--max-rate takes a rate with a unit, like 50MiB/s or 800KB/s (B, KB, MB, GB, KiB, MiB, GiB), not \(maxRate)")
        }
        return limiter
    }
}

/// The parallelism every command accepts.
func validateJobs(_ jobs: Int?) throws {
    if let jobs, !(1...64).contains(jobs) { throw ValidationError("--jobs must be between 1 and 64") }
}

extension ObjectLock.Mode: ExpressibleByArgument {}

/// `--object-lock MODE --lock-days N | --lock-for-policy FILE`: S3 Object Lock on what a command writes.
struct ObjectLockFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Set S3 Object Lock retention on every object written: governance (removable only by a caller allowed to bypass it) or compliance (by nobody). The bucket must have Object Lock enabled. See docs/runbooks/ransomware.md.", valueName: "mode"))
    var objectLock: ObjectLock.Mode?
    @Option(name: .long, help: ArgumentHelp("How many days the lock lasts, from now.", valueName: "days"))
    var lockDays: Int?
    @Option(name: .long, help: ArgumentHelp("Lock for as long as this retention policy (e.g. manifests/retention.yaml) may keep the backup: its longest calendar rule.", valueName: "policy.yaml"))
    var lockForPolicy: String?

    func validate() throws {
        guard objectLock != nil else {
            if lockDays != nil || lockForPolicy != nil { throw ValidationError("--lock-days and --lock-for-policy go with --object-lock") }
            return
        }
        guard (lockDays == nil) != (lockForPolicy == nil) else { throw ValidationError("--object-lock needs --lock-days N or --lock-for-policy FILE (one of them)") }
        if let lockDays, !(1...36_500).contains(lockDays) { throw ValidationError("--lock-days must be between 1 and 36500") }
    }

    /// The retention to set, counted from `start`; nil without --object-lock.
    func lock(from start: Date = Date()) throws -> ObjectLock? {
        guard let objectLock else { return nil }
        var days = Double(lockDays ?? 0)
        if let lockForPolicy {
            let policy = try RetentionPolicy.load(path: lockForPolicy)
            guard let horizon = policy.horizon else {
                throw DRKitError(.usage, "--lock-for-policy: \(lockForPolicy) keeps backups by count only (keep_last); give --lock-days")
            }
            days = (horizon / 86400).rounded(.up)
        }
        return ObjectLock(mode: objectLock, retainUntil: start.addingTimeInterval(days * 86400))
    }
}

/// `--metrics-file F` / `DRKIT_METRICS_DIR` / `--pushgateway URL` (or `DRKIT_PUSHGATEWAY`).
struct MetricsFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Write this run's Prometheus metrics to this file (atomically; a failure keeps the last success time). DRKIT_METRICS_DIR instead writes one file per command and label set there, for node_exporter's textfile collector.", valueName: "path"))
    var metricsFile: String?
    @Option(name: .long, help: ArgumentHelp("Push this run's metrics to this Prometheus Pushgateway (job drkit, grouped by command, database and repository; default DRKIT_PUSHGATEWAY).", valueName: "url"))
    var pushgateway: String?

    init() {}

    init(metricsFile: String?, pushgateway: String?) {
        self.metricsFile = metricsFile
        self.pushgateway = pushgateway
    }

    var publisher: MetricsPublisher {
        let environment = ProcessInfo.processInfo.environment
        return MetricsPublisher(file: metricsFile, directory: environment["DRKIT_METRICS_DIR"],
                                pushgateway: pushgateway ?? environment["DRKIT_PUSHGATEWAY"])
    }

    /// Runs `body`, then publishes its metrics whether it succeeded or failed; a metrics destination
    /// that fails is a note, never the command's failure.
    func reporting<T>(_ report: @escaping (T?, Date, Date) -> MetricsReport, _ body: () throws -> T) throws -> T {
        let publisher = self.publisher
        let started = Date()
        let value: T
        do { value = try body() } catch {
            if publisher.isEnabled { publisher.publish(report(nil, started, Date())).forEach { Console.shared.note("warning: \($0)") } }
            throw error
        }
        if publisher.isEnabled { publisher.publish(report(value, started, Date())).forEach { Console.shared.note("warning: \($0)") } }
        return value
    }
}
