import Foundation

/// What the command line and environment say about storage, applied to every repository the
/// command opens unless the repository's own URL says otherwise.
public struct StorageSettings: Sendable {
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    public var endpoint: String?
    public var region: String?
    public var pathStyle: Bool?
    public var partSizeMiB: Int?
    public var uploadConcurrency: Int?
    public var retry: RetryPolicy?
    public var timeouts: HTTPClient.Timeouts?
    /// Receives one line per HTTP request (never credentials), for --verbose.
    public var trace: (@Sendable (String) -> Void)?
    public init() {}

    /// The flags that steer where an S3 repository is and how it is addressed.
    public init(endpoint: String? = nil, region: String? = nil, pathStyle: Bool? = nil) {
        self.endpoint = endpoint
        self.region = region
        self.pathStyle = pathStyle
    }
}

/// A kind of store, reachable under one URL scheme.
public struct StorageBackend: Sendable {
    /// The URL parameters the store understands; any other is refused.
    public var parameters: Set<String>
    public var example: String
    public var open: @Sendable (_ location: StorageLocation, _ settings: StorageSettings, _ create: Bool) throws -> ObjectStore

    public init(parameters: Set<String>, example: String,
                open: @escaping @Sendable (StorageLocation, StorageSettings, Bool) throws -> ObjectStore) {
        self.parameters = parameters
        self.example = example
        self.open = open
    }
}

/// Stores by URL scheme. Adding a store is one entry here plus a type that keeps `ObjectStore`'s
/// contracts (Tests/ObjectStorageTests/StoreConformance.swift checks them).
public enum StorageRegistry {
    public static let backends: [String: StorageBackend] = [
        "file": FileStore.backend,
        "s3": S3Store.backend,
    ]

    public static func open(_ text: String, create: Bool, settings: StorageSettings = StorageSettings()) throws -> ObjectStore {
        try open(try StorageLocation.parse(text), create: create, settings: settings)
    }

    /// Checks that `text` names a store drkit can open (scheme, parameters, no credentials, no climbing
    /// path) without opening it: commands check every repository they will use before any work.
    public static func check(_ text: String) throws {
        _ = try backend(for: try StorageLocation.parse(text))
    }

    public static func open(_ location: StorageLocation, create: Bool, settings: StorageSettings = StorageSettings()) throws -> ObjectStore {
        try backend(for: location).open(location, settings, create)
    }

    private static func backend(for location: StorageLocation) throws -> StorageBackend {
        guard let backend = backends[location.scheme] else {
            let known = backends.keys.sorted().map { backends[$0]!.example }.joined(separator: ", ")
            throw StorageError(.invalidLocation, "repository scheme \"\(location.scheme)://\" is not supported (use a directory path, \(known))")
        }
        if let unknown = location.parameters.keys.sorted().first(where: { !backend.parameters.contains($0) }) {
            let allowed = backend.parameters.isEmpty ? "none" : backend.parameters.sorted().joined(separator: ", ")
            throw StorageError(.invalidLocation, "\(location.scheme):// repositories take no parameter \"\(unknown)\" (allowed: \(allowed))")
        }
        return backend
    }
}

extension FileStore {
    static let backend = StorageBackend(parameters: [], example: "file:///path") { location, _, create in
        guard location.path.hasPrefix("/") else {
            throw StorageError(.invalidLocation, "file:// repositories need an absolute path, e.g. file:///var/backups/drkit")
        }
        guard URL(fileURLWithPath: location.path).standardizedFileURL.path != "/" else {
            throw StorageError(.invalidLocation, "a repository cannot be the filesystem root: name its own folder, e.g. /var/backups/drkit")
        }
        return try FileStore(root: URL(fileURLWithPath: location.path), create: create)
    }
}

extension S3Store {
    static let backend = StorageBackend(parameters: S3Configuration.urlParameters, example: "s3://bucket/prefix") { location, settings, _ in
        var config = try S3Configuration.resolve(location: location, settings: settings, environment: settings.environment)
        if let mib = settings.partSizeMiB { config.partSize = mib << 20 }
        if let n = settings.uploadConcurrency { config.uploadConcurrency = n }
        if let retry = settings.retry { config.retry = retry }
        if let timeouts = settings.timeouts { config.timeouts = timeouts }
        return S3Store(configuration: config, trace: settings.trace)
    }
}
