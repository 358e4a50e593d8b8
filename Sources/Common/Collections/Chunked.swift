extension Array {
    /// The array in consecutive slices of `size` elements, the last one shorter when the count is not a
    /// multiple: statements sent many to a round trip, keys deleted many to a request.
    public func chunked(by size: Int) -> [ArraySlice<Element>] {
        precondition(size > 0, "chunk size must be positive")
        return stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
