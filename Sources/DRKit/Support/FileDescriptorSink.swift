import Foundation
import Common

/// Writes bytes to a file descriptor (stdout for `cat`).
public final class FileDescriptorSink: ByteSink {
    private let fd: Int32
    public init(fd: Int32) { self.fd = fd }
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw DRKitError(.tool, "write failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
    public func finish() throws {}
}
