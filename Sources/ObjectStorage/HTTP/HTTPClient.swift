import Foundation
internal import CCurl
internal import CShims

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lower-cased.
    public var headers: [String: String]
    /// The body, when it was not streamed to a sink (error responses are always collected here).
    public var body: [UInt8]
}

/// A failure below HTTP: no connection, reset, timeout. `retryable` is true for the transient ones.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public var code: Int
    public var message: String
    public var retryable: Bool
    /// Body bytes already passed to the sink before the failure (for resuming downloads).
    public var bytesDelivered: Int64
    /// Response headers received before the failure (the ETag of a download being resumed).
    public var headers: [String: String]
    public var description: String { message }
    /// Nothing answered: the connection was refused or the host name did not resolve.
    public var isUnreachable: Bool {
        code == Int(CURLE_COULDNT_CONNECT.rawValue) || code == Int(CURLE_COULDNT_RESOLVE_HOST.rawValue)
    }
}

/// HTTP/1.1 over libcurl easy handles. Handles are pooled so connections are reused, and each
/// request runs on the calling thread.
/// `@unchecked`: it owns libcurl easy handles, which Swift cannot see; the idle pool is guarded by
/// `lock`, and a handle is used by one request on one thread at a time.
public final class HTTPClient: @unchecked Sendable {
    public struct Timeouts: Sendable {
        public var connect: Int = 10
        /// Abort a transfer that moves less than 1 byte/s for this many seconds.
        public var stall: Int = 60
        public init(connect: Int = 10, stall: Int = 60) {
            self.connect = connect
            self.stall = stall
        }
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()
    private let lock = NSLock()
    private var idle: [UnsafeMutableRawPointer] = []
    let timeouts: Timeouts
    /// Called with one line per request (method, URL, status, duration); never with credentials.
    public let trace: (@Sendable (String) -> Void)?

    public init(timeouts: Timeouts = Timeouts(), trace: (@Sendable (String) -> Void)? = nil) {
        _ = HTTPClient.globalInit
        self.timeouts = timeouts
        self.trace = trace
    }

    deinit { idle.forEach { curl_easy_cleanup($0) } }

    private func checkout() -> UnsafeMutableRawPointer {
        lock.lock()
        defer { lock.unlock() }
        if let handle = idle.popLast() { return handle }
        return curl_easy_init()
    }

    private func checkin(_ handle: UnsafeMutableRawPointer) {
        curl_easy_reset(handle)
        lock.lock()
        idle.append(handle)
        lock.unlock()
    }

    /// Performs one request. A 2xx body goes to `sink` when given; other bodies are collected.
    public func perform(method: String, url: String, headers: [(String, String)], body: [UInt8]?,
                        sink: ((UnsafeRawBufferPointer) throws -> Void)? = nil) throws -> HTTPResponse {
        let handle = checkout()
        defer { checkin(handle) }
        let context = TransferContext(handle: handle, body: body, sink: sink)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let pointer = unmanaged.toOpaque()

        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in headers { list = curl_slist_append(list, "\(name): \(value)") }
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }

        drkit_curl_set_string(handle, CURLOPT_URL, url)
        drkit_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
        drkit_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, timeouts.connect)
        drkit_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
        drkit_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, timeouts.stall)
        drkit_curl_set_headers(handle, list)
        drkit_curl_set_header_callback(handle, headerCallback, pointer)
        drkit_curl_set_write_callback(handle, writeCallback, pointer)
        switch method {
        case "GET": break
        case "HEAD": drkit_curl_set_long(handle, CURLOPT_NOBODY, 1)
        default: drkit_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, method)
        }
        if let body {
            drkit_curl_set_long(handle, CURLOPT_UPLOAD, 1)
            drkit_curl_set_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.count))
            drkit_curl_set_read_callback(handle, readCallback, pointer)
            drkit_curl_set_seek_callback(handle, seekCallback, pointer)
        }
        let start = Date()
        let result = curl_easy_perform(handle)
        let elapsed = Date().timeIntervalSince(start)
        if let sinkError = context.sinkError { throw sinkError }
        guard result == CURLE_OK else {
            let message = String(cString: curl_easy_strerror(result))
            trace?("\(method) \(url) -> transport error: \(message) (\(String(format: "%.3f", elapsed)) s)")
            throw TransportError(code: Int(result.rawValue), message: message,
                                 retryable: HTTPClient.retryable.contains(result), bytesDelivered: context.delivered,
                                 headers: context.headers)
        }
        let status = drkit_curl_response_code(handle)
        trace?("\(method) \(url) -> \(status)\(context.headers["x-amz-request-id"].map { " request-id \($0)" } ?? "") (\(String(format: "%.3f", elapsed)) s)")
        return HTTPResponse(status: status, headers: context.headers, body: context.collected)
    }

    static let retryable: Set<CURLcode> = [
        CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
        CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_SEND_FAIL_REWIND, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_SSL_CONNECT_ERROR,
    ]
}

private final class TransferContext {
    let handle: UnsafeMutableRawPointer
    let body: [UInt8]?
    var bodyOffset = 0
    let sink: ((UnsafeRawBufferPointer) throws -> Void)?
    var headers: [String: String] = [:]
    var collected: [UInt8] = []
    var delivered: Int64 = 0
    var sinkError: Error?

    init(handle: UnsafeMutableRawPointer, body: [UInt8]?, sink: ((UnsafeRawBufferPointer) throws -> Void)?) {
        self.handle = handle
        self.body = body
        self.sink = sink
    }
}

private let headerCallback: drkit_curl_data_callback = { data, size, count, context in
    let total = size * count
    guard let data, let context else { return total }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: total), as: UTF8.self)
    if line.hasPrefix("HTTP/") { transfer.headers = [:] }  // a new response (after 100 Continue or a redirect)
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        transfer.headers[name] = value
    }
    return total
}

private let writeCallback: drkit_curl_data_callback = { data, size, count, context in
    let total = size * count
    guard let data, let context else { return total }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: data, count: total)
    let status = drkit_curl_response_code(transfer.handle)
    if let sink = transfer.sink, (200..<300).contains(status) {
        do { try sink(bytes) } catch {
            transfer.sinkError = error
            return 0  // makes curl abort the transfer
        }
        transfer.delivered += Int64(total)
    } else {
        transfer.collected.append(contentsOf: bytes)
    }
    return total
}

private let readCallback: drkit_curl_data_callback = { buffer, size, count, context in
    guard let buffer, let context else { return 0 }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    guard let body = transfer.body else { return 0 }
    let n = min(size * count, body.count - transfer.bodyOffset)
    body.withUnsafeBytes { source in
        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + transfer.bodyOffset, byteCount: n)
    }
    transfer.bodyOffset += n
    return n
}

/// curl resends a request on a fresh connection when a reused one dies before any answer; without a
/// way to rewind the body it gives up with CURLE_SEND_FAIL_REWIND instead.
private let seekCallback: drkit_curl_seek_callback = { context, offset, origin in
    guard let context, origin == SEEK_SET else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
    let transfer = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
    guard let body = transfer.body, offset >= 0, offset <= body.count else { return Int32(CURL_SEEKFUNC_FAIL) }
    transfer.bodyOffset = Int(offset)
    return Int32(CURL_SEEKFUNC_OK)
}
