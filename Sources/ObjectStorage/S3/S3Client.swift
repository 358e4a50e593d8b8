import Foundation
import Common

/// An S3 error response or a failure after retries, with what the operator needs to act on it.
struct S3Failure {
    var status: Int?
    var code: String?
    var message: String
}

/// Signed, retried S3 requests. Every method blocks the calling thread.
final class S3Client: Sendable {
    let config: S3Configuration
    let http: HTTPClient
    let signer: SigV4Signer
    private let clockSkew = Locked(0.0)
    /// Whether any request of this client has had an answer: until one has, a refused connection or
    /// an unknown host is most likely a wrong endpoint, worth one quick retry rather than a minute of backoff.
    private let reachedServer = Locked(false)

    init(config: S3Configuration, trace: (@Sendable (String) -> Void)? = nil) {
        self.config = config
        self.http = HTTPClient(timeouts: config.timeouts, trace: trace)
        self.signer = SigV4Signer(region: config.region)
    }

    /// The key in the bucket for a repository key.
    func bucketKey(_ key: String) -> String { config.prefix.isEmpty ? key : "\(config.prefix)/\(key)" }

    private var hostHeader: String {
        let host = config.endpoint.host ?? ""
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let base = config.pathStyle ? bracketed : "\(config.bucket).\(bracketed)"
        if let port = config.endpoint.port, !((config.endpoint.scheme == "http" && port == 80) || (config.endpoint.scheme == "https" && port == 443)) {
            return "\(base):\(port)"
        }
        return base
    }

    /// Path as signed (decoded) for an object key, or the bucket itself when `key` is nil.
    private func signedPath(_ key: String?) -> String {
        let objectPart = key.map { "/" + $0 } ?? (config.pathStyle ? "" : "/")
        return config.pathStyle ? "/\(config.bucket)\(objectPart)" : objectPart
    }

    struct Result {
        var response: HTTPResponse
    }

    /// Sends one request, signed, retrying what `RetryPolicy` allows. Non-2xx final answers throw
    /// `StorageError` naming the operation, key and last status. `sink` receives a 2xx body; on a
    /// retry after part of it was delivered, `resume` says from which byte to continue.
    func send(_ operation: String, method: String, key: String?, query: [(String, String)] = [],
              headers extraHeaders: [(String, String)] = [], body: [UInt8]? = nil,
              accept: Set<Int> = [], sink: ((UnsafeRawBufferPointer) throws -> Void)? = nil,
              onRetryAfterPartialBody: ((Int64, String?) -> [(String, String)])? = nil) throws -> HTTPResponse {
        let payloadHash = body.map { SHA256.hex($0) } ?? SHA256.hex("")
        let path = signedPath(key)
        let urlQuery = query.isEmpty ? "" : "?" + SigV4Signer.canonicalQuery(query)
        let scheme = config.endpoint.scheme ?? "https"
        let url = "\(scheme)://\(hostHeader)\(SigV4Signer.uriEncode(path, keepSlash: true))\(urlQuery)"
        var attempt = 0
        var resumeHeaders: [(String, String)] = []
        var delivered: Int64 = 0
        var firstETag: String?
        var last = S3Failure(status: nil, code: nil, message: "")
        while true {
            attempt += 1
            let request = SigV4Signer.Request(method: method, path: path, query: query,
                                              headers: [("host", hostHeader)] + replacing(extraHeaders, with: resumeHeaders), payloadHash: payloadHash)
            let now = Date().addingTimeInterval(clockSkew.current)
            var signed = signer.signS3(request, credentials: config.credentials, date: now)
            signed.removeAll { $0.0 == "host" }
            signed.append(("Host", hostHeader))
            if body != nil && !signed.contains(where: { $0.0.lowercased() == "content-type" }) {
                signed.append(("Content-Type", "application/octet-stream"))
            }
            var retryAfter: Double?
            let offset = delivered
            do {
                let response = try http.perform(method: method, url: url, headers: signed, body: body, sink: sink)
                reachedServer.withLock { $0 = true }
                if (200..<300).contains(response.status) || accept.contains(response.status) { return response }
                let error = XMLNodeTree.parse(response.body)
                last = S3Failure(status: response.status, code: error?.value("Code"), message: error?.value("Message") ?? "")
                retryAfter = RetryPolicy.parseRetryAfter(response.headers["retry-after"])
                if last.code == "RequestTimeTooSkewed", let serverDate = response.headers["date"].flatMap(HTTPDate.parse) {
                    clockSkew.withLock { $0 = serverDate.timeIntervalSince(Date()) }
                    if attempt < config.retry.maxAttempts { continue }
                }
                guard config.retry.shouldRetry(status: response.status, errorCode: last.code, transportRetryable: false, attempt: attempt) else {
                    throw failure(operation, key: key, last: last, attempts: attempt)
                }
            } catch let error as TransportError {
                last = S3Failure(status: nil, code: nil, message: error.message)
                delivered = offset + error.bytesDelivered
                if firstETag == nil { firstETag = error.headers["etag"] }
                if error.isUnreachable && attempt >= 2 && !reachedServer.current {
                    throw failure(operation, key: key, last: last, attempts: attempt)
                }
                guard config.retry.shouldRetry(status: nil, errorCode: nil, transportRetryable: error.retryable, attempt: attempt) else {
                    throw failure(operation, key: key, last: last, attempts: attempt)
                }
                if delivered > 0 {
                    // Part of the body reached the sink: ask only for the rest.
                    guard let onRetryAfterPartialBody else { throw failure(operation, key: key, last: last, attempts: attempt) }
                    resumeHeaders = onRetryAfterPartialBody(delivered, firstETag)
                }
            }
            let wait = config.retry.delay(attempt: attempt, retryAfter: retryAfter, unit: Double.random(in: 0..<1))
            http.trace?("retrying \(operation) \(key ?? config.bucket) in \(String(format: "%.2f", wait)) s (attempt \(attempt) failed: \(describe(last)))")
            Thread.sleep(forTimeInterval: wait)
        }
    }

    /// `headers` with those named again in `replacements` swapped for the replacements (a resumed
    /// download's Range replaces the original one).
    private func replacing(_ headers: [(String, String)], with replacements: [(String, String)]) -> [(String, String)] {
        let replaced = Set(replacements.map { $0.0.lowercased() })
        return headers.filter { !replaced.contains($0.0.lowercased()) } + replacements
    }

    private func describe(_ f: S3Failure) -> String {
        var parts: [String] = []
        if let status = f.status { parts.append("HTTP \(status)") }
        if let code = f.code { parts.append(code) }
        if !f.message.isEmpty { parts.append(f.message) }
        return parts.joined(separator: " ")
    }

    private func failure(_ operation: String, key: String?, last: S3Failure, attempts: Int) -> StorageError {
        let target = key.map { "s3://\(config.bucket)/\($0)" } ?? "s3://\(config.bucket)"
        let tries = attempts > 1 ? " after \(attempts) attempts" : ""
        let detail = describe(last)
        switch (last.status, last.code) {
        // NoSuchBucket is a 404 too: it must be told apart before the plain not-found case.
        case (_, "NoSuchBucket"?):
            return StorageError(.unreachable, "\(operation) \(target): bucket \(config.bucket) does not exist at \(config.endpoint.absoluteString)")
        case (404, _), (_, "NoSuchKey"?):
            return StorageError(.notFound, "\(operation) \(target): not found")
        case (_, "SignatureDoesNotMatch"?), (_, "InvalidAccessKeyId"?), (_, "InvalidClientTokenId"?), (_, "ExpiredToken"?):
            return StorageError(.denied, "\(operation) \(target): S3 authentication failed (\(last.code!)): check the access key and secret (credentials from \(config.credentials.source))")
        case (403, _):
            return StorageError(.denied, "\(operation) \(target): access denied (\(detail))")
        case (nil, _):
            return StorageError(.unreachable, "\(operation) \(target) failed\(tries): \(detail) (endpoint \(config.endpoint.absoluteString))")
        default:
            return StorageError(.failed, "\(operation) \(target) failed\(tries): \(detail)")
        }
    }

    // MARK: Operations

    /// Object Lock retention headers; AWS also wants a Content-MD5 on every upload request that sets one.
    static func lockHeaders(_ lock: ObjectLock?) -> [(String, String)] {
        guard let lock else { return [] }
        return [("x-amz-object-lock-mode", lock.mode.rawValue.uppercased()),
                ("x-amz-object-lock-retain-until-date", Timestamps.iso8601(lock.retainUntil))]
    }

    func putObject(_ key: String, body: [UInt8], lock: ObjectLock? = nil) throws {
        let md5 = lock == nil ? [] : [("Content-MD5", MD5.base64(body))]
        _ = try send("PutObject", method: "PUT", key: bucketKey(key), headers: S3Client.lockHeaders(lock) + md5, body: body)
    }

    func createMultipartUpload(_ key: String, lock: ObjectLock? = nil) throws -> String {
        let response = try send("CreateMultipartUpload", method: "POST", key: bucketKey(key), query: [("uploads", "")],
                                headers: S3Client.lockHeaders(lock))
        guard let id = XMLNodeTree.parse(response.body)?.value("UploadId"), !id.isEmpty else {
            throw StorageError(.failed, "CreateMultipartUpload s3://\(config.bucket)/\(bucketKey(key)): no UploadId in the answer")
        }
        return id
    }

    /// Uploads one part; S3 checks the payload against the signed x-amz-content-sha256.
    func uploadPart(_ key: String, uploadId: String, partNumber: Int, body: [UInt8], contentMD5: Bool = false) throws -> String {
        let response = try send("UploadPart \(partNumber)", method: "PUT", key: bucketKey(key),
                                query: [("partNumber", String(partNumber)), ("uploadId", uploadId)],
                                headers: contentMD5 ? [("Content-MD5", MD5.base64(body))] : [], body: body)
        guard let etag = response.headers["etag"] else {
            throw StorageError(.failed, "UploadPart \(partNumber) of s3://\(config.bucket)/\(bucketKey(key)): no ETag in the answer")
        }
        return etag
    }

    /// Completes an upload; returns the new object's version id when the bucket is versioned.
    @discardableResult
    func completeMultipartUpload(_ key: String, uploadId: String, parts: [(Int, String)]) throws -> String? {
        let xml = "<CompleteMultipartUpload>" + parts.map {
            "<Part><PartNumber>\($0.0)</PartNumber><ETag>\(XMLText.escape($0.1))</ETag></Part>"
        }.joined() + "</CompleteMultipartUpload>"
        let response = try send("CompleteMultipartUpload", method: "POST", key: bucketKey(key),
                                query: [("uploadId", uploadId)], headers: [("Content-Type", "application/xml")], body: Array(xml.utf8))
        // S3 may answer 200 with an <Error> body when completion fails late.
        if let root = XMLNodeTree.parse(response.body), root.name == "Error" {
            throw StorageError(.failed, "CompleteMultipartUpload s3://\(config.bucket)/\(bucketKey(key)): \(root.value("Code") ?? "error") \(root.value("Message") ?? "")")
        }
        return response.headers["x-amz-version-id"]
    }

    /// The Object Lock retention on `key` (one version of it when `versionId` is given), from HEAD;
    /// nil when it has none or does not exist.
    func retention(_ key: String, versionId: String? = nil) throws -> ObjectLock? {
        let response = try send("HeadObject", method: "HEAD", key: bucketKey(key), query: versionId.map { [("versionId", $0)] } ?? [], accept: [404])
        guard response.status != 404, let mode = response.headers["x-amz-object-lock-mode"].flatMap({ ObjectLock.Mode(rawValue: $0.lowercased()) }),
              let until = response.headers["x-amz-object-lock-retain-until-date"].flatMap(Timestamps.parse) else { return nil }
        return ObjectLock(mode: mode, retainUntil: until)
    }

    /// PutObjectRetention: sets `lock` on the object (the given version).
    func putRetention(_ key: String, lock: ObjectLock, versionId: String?) throws {
        let xml = "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>\(lock.mode.rawValue.uppercased())</Mode>"
            + "<RetainUntilDate>\(Timestamps.iso8601(lock.retainUntil))</RetainUntilDate></Retention>"
        let body = Array(xml.utf8)
        _ = try send("PutObjectRetention", method: "PUT", key: bucketKey(key), query: [("retention", "")] + (versionId.map { [("versionId", $0)] } ?? []),
                     headers: [("Content-MD5", MD5.base64(body)), ("Content-Type", "application/xml")], body: body)
    }

    /// Makes sure `lock` holds on an object just written: some stores (Ceph RGW 16) ignore the lock
    /// headers of CreateMultipartUpload, so an upload in parts gets its retention set afterwards, and
    /// the store's answer is checked. Throws when the store will not keep it.
    func ensureRetention(_ key: String, lock: ObjectLock, versionId: String?) throws {
        if let current = try retention(key, versionId: versionId), current.holds(lock) { return }
        try putRetention(key, lock: lock, versionId: versionId)
        guard let after = try retention(key, versionId: versionId), after.holds(lock) else {
            throw StorageError(.failed, "s3://\(config.bucket)/\(bucketKey(key)): the store did not keep the Object Lock retention (\(lock.mode.rawValue) until \(Timestamps.iso8601(lock.retainUntil))) after PutObjectRetention; the object is not protected")
        }
    }

    func abortMultipartUpload(bucketKey fullKey: String, uploadId: String) throws {
        _ = try send("AbortMultipartUpload", method: "DELETE", key: fullKey, query: [("uploadId", uploadId)], accept: [404])
    }

    func getObject(_ key: String, range: Range<Int64>? = nil, into sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        let start = range?.lowerBound ?? 0
        let end = range.map { "\($0.upperBound - 1)" } ?? ""
        let initial = range.map { _ in [("Range", "bytes=\(start)-\(end)")] } ?? []
        // An interrupted download continues where it stopped, and only from the same object version.
        _ = try send("GetObject", method: "GET", key: bucketKey(key), headers: initial, sink: sink, onRetryAfterPartialBody: { delivered, etag in
            var headers = [("Range", "bytes=\(start + delivered)-\(end)")]
            if let etag { headers.append(("If-Match", etag)) }
            return headers
        })
    }

    /// HEAD: the object's size and modification time, or nil when it does not exist.
    func headObject(_ key: String) throws -> ListedObject? {
        let response = try send("HeadObject", method: "HEAD", key: bucketKey(key), accept: [404])
        guard response.status != 404 else { return nil }
        return ListedObject(key: key, size: Int64(response.headers["content-length"] ?? "0") ?? 0,
                            modified: response.headers["last-modified"].flatMap(HTTPDate.parse)?.timeIntervalSince1970 ?? 0)
    }

    struct ListedObject {
        var key: String
        var size: Int64
        var modified: Double
        var etag: String? = nil
    }

    /// Every object under `prefix` (a bucket key prefix), following continuation tokens.
    func listObjects(prefix: String) throws -> [ListedObject] {
        try listPages(prefix: prefix, delimiter: nil).flatMap { page in
            page.all("Contents").compactMap { item -> ListedObject? in
                guard let key = item.value("Key") else { return nil }
                return ListedObject(key: key, size: Int64(item.value("Size") ?? "0") ?? 0,
                                    modified: item.value("LastModified").flatMap(Timestamps.parse)?.timeIntervalSince1970 ?? 0,
                                    etag: item.value("ETag"))
            }
        }
    }

    /// The "folders" under `prefix`: ListObjectsV2 with delimiter `/`.
    func listCommonPrefixes(prefix: String) throws -> [String] {
        try listPages(prefix: prefix, delimiter: "/").flatMap { $0.all("CommonPrefixes").compactMap { $0.value("Prefix") } }
    }

    /// Every page of a ListObjectsV2 listing, following continuation tokens.
    private func listPages(prefix: String, delimiter: String?) throws -> [XMLNodeTree] {
        var pages: [XMLNodeTree] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(config.listPageSize))]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let token { query.append(("continuation-token", token)) }
            let response = try send("ListObjectsV2", method: "GET", key: nil, query: query)
            guard let root = XMLNodeTree.parse(response.body) else {
                throw StorageError(.failed, "ListObjectsV2 s3://\(config.bucket)/\(prefix): unreadable answer")
            }
            pages.append(root)
            token = root.value("IsTruncated") == "true" ? root.value("NextContinuationToken") : nil
        } while token != nil
        return pages
    }

    /// Deletes `config.deleteBatchSize` bucket keys per request (DeleteObjects needs a Content-MD5).
    func deleteObjects(bucketKeys keys: [String]) throws {
        try deleteObjects(keys.map { ObjectVersion(key: $0, versionId: nil) }, bypassGovernance: false)
    }

    /// A bucket key, and one version of it (nil: the current one; deleting it on a versioned bucket
    /// adds a delete marker).
    struct ObjectVersion {
        var key: String
        var versionId: String?
    }

    /// Every version and delete marker under `prefix` (ListObjectVersions), following the markers.
    func listVersions(prefix: String) throws -> [ObjectVersion] {
        var out: [ObjectVersion] = []
        var keyMarker: String?, versionMarker: String?
        repeat {
            var query = [("versions", ""), ("prefix", prefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let versionMarker { query.append(("version-id-marker", versionMarker)) }
            let response = try send("ListObjectVersions", method: "GET", key: nil, query: query)
            guard let root = XMLNodeTree.parse(response.body) else {
                throw StorageError(.failed, "ListObjectVersions s3://\(config.bucket)/\(prefix): unreadable answer")
            }
            for item in root.all("Version") + root.all("DeleteMarker") {
                guard let key = item.value("Key"), let id = item.value("VersionId") else { continue }
                out.append(ObjectVersion(key: key, versionId: id))
            }
            if root.value("IsTruncated") == "true" {
                keyMarker = root.value("NextKeyMarker")
                versionMarker = root.value("NextVersionIdMarker")
            } else {
                keyMarker = nil
            }
        } while keyMarker != nil
        return out
    }

    /// DeleteObjects, `config.deleteBatchSize` entries per request (it needs a Content-MD5). An entry
    /// with a version id deletes that version for good; `bypassGovernance` asks to remove
    /// governance-locked ones too (the caller needs s3:BypassGovernanceRetention).
    func deleteObjects(_ entries: [ObjectVersion], bypassGovernance: Bool) throws {
        for batch in entries.chunked(by: config.deleteBatchSize) {
            let xml = "<Delete><Quiet>true</Quiet>" + batch.map { entry in
                "<Object><Key>\(XMLText.escape(entry.key))</Key>" + (entry.versionId.map { "<VersionId>\(XMLText.escape($0))</VersionId>" } ?? "") + "</Object>"
            }.joined() + "</Delete>"
            let body = Array(xml.utf8)
            let bypass = bypassGovernance ? [("x-amz-bypass-governance-retention", "true")] : []
            let response = try send("DeleteObjects", method: "POST", key: nil, query: [("delete", "")],
                                    headers: [("Content-MD5", MD5.base64(body)), ("Content-Type", "application/xml")] + bypass, body: body)
            if let root = XMLNodeTree.parse(response.body), let error = root.all("Error").first {
                throw StorageError(.failed, "DeleteObjects: \(error.value("Key") ?? "?"): \(error.value("Code") ?? "") \(error.value("Message") ?? "")")
            }
        }
    }

    struct MultipartUpload {
        var key: String
        var uploadId: String
        var initiated: Double
    }

    func listMultipartUploads(prefix: String) throws -> [MultipartUpload] {
        var out: [MultipartUpload] = []
        var keyMarker: String?, idMarker: String?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let idMarker { query.append(("upload-id-marker", idMarker)) }
            let response = try send("ListMultipartUploads", method: "GET", key: nil, query: query)
            guard let root = XMLNodeTree.parse(response.body) else { break }
            for upload in root.all("Upload") {
                guard let key = upload.value("Key"), let id = upload.value("UploadId") else { continue }
                out.append(MultipartUpload(key: key, uploadId: id,
                                           initiated: upload.value("Initiated").flatMap(Timestamps.parse)?.timeIntervalSince1970 ?? 0))
            }
            if root.value("IsTruncated") == "true" {
                keyMarker = root.value("NextKeyMarker")
                idMarker = root.value("NextUploadIdMarker")
            } else {
                keyMarker = nil
            }
        } while keyMarker != nil
        return out
    }
}
