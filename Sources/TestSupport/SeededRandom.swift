import Foundation

/// A small seeded generator, so the kill points are spread the same way in every run.
public struct SplitMix {
    private var generator: SeededGenerator
    public init(seed: UInt64) { generator = SeededGenerator(seed: seed) }
    public mutating func next() -> UInt32 { UInt32(truncatingIfNeeded: generator.next()) }
}

/// SplitMix64 as a `RandomNumberGenerator`, so property tests draw the same cases in every run.
public struct SeededGenerator: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
