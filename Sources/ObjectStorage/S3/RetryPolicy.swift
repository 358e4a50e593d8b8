import Foundation

/// When and how long to wait before trying an S3 request again. Pure logic; the client applies it.
///
/// Retried: connection failures, resets and timeouts; HTTP 500, 502, 503, 504 and 429; and the S3
/// error codes SlowDown, RequestTimeout, InternalError, ServiceUnavailable. Delays use exponential
/// backoff with full jitter (a uniform draw in [0, min(cap, base × 2^attempt)]), never shorter than a
/// `Retry-After` the server sent.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Double
    public var maxDelay: Double

    public init(maxAttempts: Int = 8, baseDelay: Double = 0.2, maxDelay: Double = 20) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    static let retryableStatus: Set<Int> = [429, 500, 502, 503, 504]
    static let retryableCodes: Set<String> = ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException"]

    public func shouldRetry(status: Int?, errorCode: String?, transportRetryable: Bool, attempt: Int) -> Bool {
        guard attempt < maxAttempts else { return false }
        if transportRetryable { return true }
        if let errorCode, RetryPolicy.retryableCodes.contains(errorCode) { return true }
        if let status, RetryPolicy.retryableStatus.contains(status) { return true }
        return false
    }

    /// `attempt` counts from 1 (the attempt that just failed); `unit` is a uniform draw in [0, 1).
    public func delay(attempt: Int, retryAfter: Double?, unit: Double) -> Double {
        let ceiling = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        let jittered = ceiling * unit
        guard let retryAfter else { return jittered }
        return max(jittered, min(retryAfter, maxDelay * 3))
    }

    /// `Retry-After` as delta-seconds or an HTTP date.
    public static func parseRetryAfter(_ value: String?, now: Date = Date()) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value) { return max(0, seconds) }
        return HTTPDate.parse(value).map { max(0, $0.timeIntervalSince(now)) }
    }
}
