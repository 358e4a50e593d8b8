import Foundation

/// Where an S3 repository is and how to reach it, resolved the way the AWS CLI resolves it.
public struct S3Configuration: Sendable {
    public var bucket: String
    /// Key prefix of the repository inside the bucket, without leading or trailing slash ("" for the root).
    public var prefix: String
    public var region: String
    /// e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000
    public var endpoint: URL
    public var pathStyle: Bool
    public var credentials: AWSCredentials
    public var partSize: Int = 8 << 20
    public var uploadConcurrency: Int = 4
    public var retry = RetryPolicy()
    /// ListObjectsV2 page size and DeleteObjects batch size (S3's maximum is 1000 for both; tests use less).
    public var listPageSize = 1000
    public var deleteBatchSize = 1000
    public var timeouts = HTTPClient.Timeouts()

    /// Options an `s3://` location may carry: `endpoint`, `region`, `profile` (a named profile of the
    /// AWS shared files, for its credentials, region and endpoint_url) and `addressing=path|virtual`.
    static let urlParameters: Set<String> = ["endpoint", "region", "profile", "addressing"]

    /// Parses `s3://bucket/prefix[?options]` and resolves credentials, region and endpoint.
    public static func resolve(url: String, settings: StorageSettings = StorageSettings(),
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Configuration {
        let location = try StorageLocation.parse(url)
        guard location.scheme == "s3" else { throw StorageError(.invalidLocation, "not an s3:// URL: \(url)") }
        if let unknown = location.parameters.keys.first(where: { !urlParameters.contains($0) }) {
            throw StorageError(.invalidLocation, "s3:// repositories take no parameter \"\(unknown)\"")
        }
        return try resolve(location: location, settings: settings, environment: environment)
    }

    /// Precedence, highest first: the location's own parameters; the profile it names (`?profile=`);
    /// the command's flags (`settings`: endpoint, region, addressing); the environment (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
    /// AWS_REGION, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID...); the AWS_PROFILE or default profile.
    /// A profile named on the location supplies the credentials even when AWS_ACCESS_KEY_ID is set,
    /// as `aws --profile` does, so two repositories can use two identities in one command.
    static func resolve(location: StorageLocation, settings overrides: StorageSettings, environment: [String: String]) throws -> S3Configuration {
        let bucket = String(location.path.prefix { $0 != "/" })
        guard !bucket.isEmpty else { throw StorageError(.invalidLocation, "s3:// URL needs a bucket: s3://bucket/prefix") }
        let prefix = location.path.dropFirst(bucket.count).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let parameters = location.parameters
        let named = parameters["profile"]
        if let named, named.isEmpty { throw StorageError(.invalidLocation, "?profile= needs a profile name") }
        let profiles = AWSSharedConfig(environment: environment, explicitProfile: named)
        if named != nil && !profiles.profileExists {
            throw StorageError(.invalidLocation, "AWS profile \"\(named!)\" is not in \(profiles.credentialsPath) or \(profiles.configPath)")
        }
        let credentials: AWSCredentials
        do { credentials = try profiles.credentials() } catch let e as StorageError { throw StorageError(.invalidLocation, e.message) }
        let fromNamedProfile = { (key: String) in named != nil ? profiles.setting(key) : nil }
        let region = nonEmpty(parameters["region"]) ?? fromNamedProfile("region") ?? overrides.region
            ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? profiles.setting("region") ?? "us-east-1"
        let endpointText = nonEmpty(parameters["endpoint"]) ?? (named != nil ? profiles.s3EndpointURL : nil) ?? overrides.endpoint
            ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"]
            ?? profiles.s3EndpointURL ?? "https://s3.\(region).amazonaws.com"
        guard !StorageLocation.hasUserInfo(endpointText) else {
            throw StorageError(.invalidLocation, "the S3 endpoint cannot carry credentials before \"@\" (from the URL, --s3-endpoint, AWS_ENDPOINT_URL or the profile); give credentials through the environment or a profile")
        }
        guard let endpoint = URL(string: endpointText), let scheme = endpoint.scheme, ["http", "https"].contains(scheme),
              endpoint.host != nil else {
            throw StorageError(.invalidLocation, "S3 endpoint \"\(endpointText)\" is not an http(s) URL")
        }
        let host = endpoint.host ?? ""
        let looksLocal = host == "localhost" || host.allSatisfy { $0.isNumber || $0 == "." } || host.contains(":")
        var pathStyle = overrides.pathStyle ?? (environment["DRKIT_S3_ADDRESSING"].map { $0 == "path" } ?? (looksLocal || bucket.contains(".")))
        switch parameters["addressing"] {
        case nil: break
        case "path"?: pathStyle = true
        case "virtual"?: pathStyle = false
        case let other?: throw StorageError(.invalidLocation, "addressing=\(other): use addressing=path or addressing=virtual")
        }
        // bucket.127.0.0.1 is no host name: refuse at once instead of failing DNS lookups with retries.
        let isIPAddress = host.contains(":") || (host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." })
        if !pathStyle && isIPAddress {
            throw StorageError(.invalidLocation, "virtual-hosted addressing needs a DNS name, but the endpoint \(endpointText) is an IP address: use path-style addressing (addressing=path or --s3-path-style)")
        }
        var config = S3Configuration(bucket: bucket, prefix: prefix, region: region, endpoint: endpoint, pathStyle: pathStyle,
                                     credentials: credentials)
        if let attempts = environment["AWS_MAX_ATTEMPTS"].flatMap(Int.init), attempts >= 1 { config.retry.maxAttempts = attempts }
        return config
    }

    private static func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }

    /// `s3://bucket/prefix`, for messages: never holds credentials.
    public var location: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }
}

/// `~/.aws/credentials` and `~/.aws/config` (or AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE), for
/// the profile in AWS_PROFILE (else "default").
struct AWSSharedConfig {
    let environment: [String: String]
    let profile: String
    let credentialsFile: [String: [String: String]]
    let configFile: [String: [String: String]]
    let credentialsPath: String
    let configPath: String

    /// Named on the repository URL: its credentials win over the environment's.
    let explicit: Bool

    init(environment: [String: String], explicitProfile: String? = nil) {
        self.environment = environment
        explicit = explicitProfile != nil
        profile = explicitProfile ?? environment["AWS_PROFILE"] ?? environment["AWS_DEFAULT_PROFILE"] ?? "default"
        let home = environment["HOME"] ?? NSHomeDirectory()
        credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        configPath = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        credentialsFile = AWSSharedConfig.parseINI(path: credentialsPath)
        configFile = AWSSharedConfig.parseINI(path: configPath)
    }

    /// Sections of key = value lines. An indented line under a key with an empty value is a nested
    /// setting, stored as `parent.key` (the aws CLI's `s3 =` / `  endpoint_url = ...` form).
    static func parseINI(path: String) -> [String: [String: String]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        return parseINI(text: text)
    }

    static func parseINI(text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        var parent: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                parent = nil
                continue
            }
            guard let current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            let indented = raw.first == " " || raw.first == "\t"
            if indented, let parent {
                sections[current, default: [:]]["\(parent).\(key)"] = value
                continue
            }
            parent = value.isEmpty ? key : nil
            sections[current, default: [:]][key] = value
        }
        return sections
    }

    /// The S3 endpoint the profile names: its `services` section's `s3` `endpoint_url`, else its own
    /// `endpoint_url` (the aws CLI's order).
    var s3EndpointURL: String? {
        if let services = setting("services"), let url = configFile["services \(services)"]?["s3.endpoint_url"], !url.isEmpty { return url }
        return setting("endpoint_url")
    }

    /// A setting of the profile in the config file (`[profile name]`, or `[default]`).
    func setting(_ key: String) -> String? {
        let section = profile == "default" ? configFile["default"] : (configFile["profile \(profile)"] ?? configFile[profile])
        return section?[key]
    }

    var profileExists: Bool {
        credentialsFile[profile] != nil || configFile[profile == "default" ? "default" : "profile \(profile)"] != nil
    }

    func credentials() throws -> AWSCredentials {
        if !explicit, let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty {
            guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw StorageError(.denied, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
            }
            return AWSCredentials(accessKeyId: id, secretAccessKey: secret,
                                  sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
                                  source: "environment")
        }
        let fromCredentials = credentialsFile[profile]
        let fromConfig = profile == "default" ? configFile["default"] : configFile["profile \(profile)"]
        for (section, file) in [(fromCredentials, credentialsPath), (fromConfig, configPath)] {
            if let id = section?["aws_access_key_id"], let secret = section?["aws_secret_access_key"] {
                return AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: section?["aws_session_token"],
                                      source: "profile \(profile) in \(file)")
            }
        }
        throw StorageError(.denied, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with \(credentialsPath)")
    }
}
