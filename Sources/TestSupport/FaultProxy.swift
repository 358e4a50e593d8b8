import Foundation
import Common

/// An HTTP proxy on 127.0.0.1 in front of the test S3 server that injects faults at a set rate.
/// Client connections are kept alive (as a real S3 endpoint does), so a client reuses them and meets
/// the faults only reused connections have; each request goes upstream on its own connection. It
/// stops by itself after `maxRequests` requests or `lifetime` seconds, and never connects anywhere
/// but 127.0.0.1.
public final class FaultProxy: Sendable {
    public enum Fault: String, CaseIterable, Sendable {
        case internalError      // 500 InternalError
        case slowDown           // 503 SlowDown
        case throttled          // 429 with Retry-After: 1
        case reset              // connection reset before any response
        case truncatedResponse  // response cut in the middle of its body, then reset
        case slow               // the real response, 1.5 s late
        /// On a connection that already served a request: reset once the request is read, before
        /// any answer (what a server that closed an idle connection looks like). On a new
        /// connection the request goes through.
        case resetOnReuse
        /// The request reaches the server and takes effect; its answer never arrives (reset). Not in
        /// `standard`: a test asks for it by name.
        case lostResponse
        /// 404 NoSuchUpload without asking the server: what AWS answers a retried
        /// CompleteMultipartUpload whose first answer was lost. Not in `standard`.
        case noSuchUpload

        /// The faults of a random mix.
        public static let standard: [Fault] = allCases.filter { $0 != .lostResponse && $0 != .noSuchUpload }
    }

    public struct Plan: Sendable {
        /// Probability that a matching request gets a fault.
        public var rate: Double
        public var faults: [Fault]
        /// Only requests whose request line contains this text are eligible (nil: every request).
        public var match: String?
        public var seed: UInt64
        /// Stop injecting after this many faults (nil: no limit).
        public var maxFaults: Int?
        /// The n-th matching request gets `faults[n]`, then none (instead of a random draw).
        public var inOrder: Bool

        public init(rate: Double, faults: [Fault] = Fault.standard, match: String? = nil, seed: UInt64 = 42, maxFaults: Int? = nil,
                    inOrder: Bool = false) {
            self.rate = rate
            self.faults = faults
            self.match = match
            self.seed = seed
            self.maxFaults = maxFaults
            self.inOrder = inOrder
        }
    }

    public let port: Int
    private let upstreamPort: Int
    private let listener: Int32
    private let state: Locked<(plan: Plan, rng: UInt64, requests: Int, injected: [Fault: Int], stopped: Bool)>
    private let maxRequests: Int
    private let deadline: Date

    public init(upstreamPort: Int, plan: Plan, maxRequests: Int = 20_000, lifetime: TimeInterval = 600) throws {
        self.upstreamPort = upstreamPort
        self.maxRequests = maxRequests
        self.deadline = Date().addingTimeInterval(lifetime)
        state = Locked((plan, plan.seed, 0, [:], false))
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = FaultProxy.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw TestServices.Missing(description: "fault proxy cannot listen on 127.0.0.1")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    deinit { stop() }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Faults injected so far, by kind.
    public var injected: [Fault: Int] { state.current.injected }
    public var requests: Int { state.current.requests }

    public func setPlan(_ plan: Plan) {
        state.withLock { $0.plan = plan; $0.rng = plan.seed }
    }

    public func stop() {
        let wasStopped = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return s.stopped
        }
        if !wasStopped {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while Date() < deadline {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if state.current.stopped { return }
                continue
            }
            if state.current.requests >= maxRequests {
                close(client)
                stop()
                return
            }
            Thread { [self] in handle(client) }.start()
        }
        stop()
    }

    private func decide(requestLine: String, reused: Bool) -> Fault? {
        state.withLock { s -> Fault? in
            s.requests += 1
            if let match = s.plan.match, !requestLine.contains(match) { return nil }
            if let limit = s.plan.maxFaults, s.injected.values.reduce(0, +) >= limit { return nil }
            guard !s.plan.faults.isEmpty else { return nil }
            if s.plan.inOrder {
                let index = s.injected.values.reduce(0, +)
                guard index < s.plan.faults.count else { return nil }
                s.injected[s.plan.faults[index], default: 0] += 1
                return s.plan.faults[index]
            }
            // SplitMix64: reproducible for a given seed.
            s.rng &+= 0x9E37_79B9_7F4A_7C15
            var z = s.rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let unit = Double(z >> 11) / Double(1 << 53)
            guard unit < s.plan.rate else { return nil }
            let fault = s.plan.faults[Int(z % UInt64(s.plan.faults.count))]
            if fault == .resetOnReuse && !reused { return nil }
            s.injected[fault, default: 0] += 1
            return fault
        }
    }

    private func handle(_ client: Int32) {
        defer { close(client) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var served = 0
        while let (head, body) = readRequest(client) {
            guard serve(client, head: head, body: body, reused: served > 0) else { return }
            served += 1
            if state.current.stopped { return }
        }
    }

    /// Answers one request; false when the connection must close.
    private func serve(_ client: Int32, head: String, body: [UInt8], reused: Bool) -> Bool {
        let lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.first ?? ""
        guard state.current.requests < maxRequests else {
            stop()
            return false
        }
        let fault = decide(requestLine: requestLine, reused: reused)
        switch fault {
        case .internalError?:
            respond(client, status: "500 Internal Server Error", code: "InternalError", extra: "")
            return true
        case .slowDown?:
            respond(client, status: "503 Slow Down", code: "SlowDown", extra: "")
            return true
        case .throttled?:
            respond(client, status: "429 Too Many Requests", code: "Throttling", extra: "Retry-After: 1\r\n")
            return true
        case .noSuchUpload?:
            respond(client, status: "404 Not Found", code: "NoSuchUpload", extra: "")
            return true
        case .reset?:
            resetConnection(client)
            return false
        case .resetOnReuse?:
            resetConnection(client)
            return false
        case .slow?:
            Thread.sleep(forTimeInterval: 1.5)
        default:
            break
        }
        // Upstream gets Connection: close, so its response ends at EOF.
        var forwarded = lines.filter { !$0.lowercased().hasPrefix("connection:") && !$0.isEmpty }
        forwarded.append("Connection: close")
        var request = Array((forwarded.joined(separator: "\r\n") + "\r\n\r\n").utf8)
        request += body
        guard let response = exchange(request) else {
            resetConnection(client)
            return false
        }
        if fault == .lostResponse {
            resetConnection(client)
            return false
        }
        if fault == .truncatedResponse, let headEnd = FaultProxy.find(Array("\r\n\r\n".utf8), in: response),
           response.count - (headEnd + 4) > 16 {
            let cut = headEnd + 4 + (response.count - headEnd - 4) / 2
            writeAll(client, Array(response[0..<cut]))
            resetConnection(client)
            return false
        }
        let (framed, keepAlive) = FaultProxy.reframe(response, isHead: requestLine.hasPrefix("HEAD "))
        writeAll(client, framed)
        return keepAlive
    }

    /// The upstream response with its Connection header set for the client: keep-alive when the
    /// response's length is known from its head, otherwise close (the body then ends at EOF).
    static func reframe(_ response: [UInt8], isHead: Bool) -> ([UInt8], Bool) {
        guard let headEnd = find(Array("\r\n\r\n".utf8), in: response) else { return (response, false) }
        let lines = String(decoding: response[0..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let bodyLength = response.count - headEnd - 4
        let declared = lines.first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
        let chunked = lines.contains { $0.lowercased().hasPrefix("transfer-encoding:") }
        let bodyless = isHead || status == 204 || status == 304
        var kept = lines.filter { !$0.lowercased().hasPrefix("connection:") }
        var keepAlive = !chunked && (bodyless || declared == bodyLength)
        if !chunked && declared == nil && !bodyless {
            kept.append("Content-Length: \(bodyLength)")
            keepAlive = true
        }
        kept.append(keepAlive ? "Connection: keep-alive" : "Connection: close")
        return (Array((kept.joined(separator: "\r\n") + "\r\n\r\n").utf8) + response[(headEnd + 4)...], keepAlive)
    }

    private func exchange(_ request: [UInt8]) -> [UInt8]? {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(upstream) }
        var address = FaultProxy.loopback(port: UInt16(upstreamPort))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        writeAll(upstream, request)
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(upstream, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return response.isEmpty ? nil : response
    }

    private func readRequest(_ fd: Int32) -> (String, [UInt8])? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var headEnd: Int?
        while headEnd == nil {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            data += buffer[0..<n]
            headEnd = FaultProxy.find(Array("\r\n\r\n".utf8), in: data)
        }
        let head = String(decoding: data[0..<headEnd!], as: UTF8.self)
        var length = 0
        for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        var body = Array(data[(headEnd! + 4)...])
        while body.count < length {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            body += buffer[0..<n]
        }
        return (head, body)
    }

    private func respond(_ fd: Int32, status: String, code: String, extra: String) {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>\(code)</Code><Message>injected by drkit's fault proxy</Message></Error>"
        let text = "HTTP/1.1 \(status)\r\nContent-Type: application/xml\r\nContent-Length: \(body.utf8.count)\r\n\(extra)Connection: keep-alive\r\n\r\n\(body)"
        writeAll(fd, Array(text.utf8))
    }

    private func resetConnection(_ fd: Int32) {
        var linger = Foundation.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Foundation.linger>.size))
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }
}
