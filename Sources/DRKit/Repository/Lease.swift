import Archive
import ObjectStorage
import Foundation
import Common

/// What a lease says about its holder. Stored as JSON in the lease's heartbeat object.
public struct LeaseRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case backup, clean, rotate, forget, copy }
    public var holder: String
    public var kind: Kind
    /// The backup a `backup` lease protects.
    public var backupId: String?
    public var host: String
    public var pid: Int32
    public var started: Date
    public var heartbeat: Date

    /// Held by a process of this host that no longer exists (killed): as good as stale, without waiting
    /// for the timeout. A reused pid keeps it live, which errs on the safe side.
    public var holderIsGone: Bool {
        host == ProcessInfo.processInfo.hostName && pid > 0 && !holderIsAliveHere
    }

    /// Held by a process of this host that still exists: never stale, however old its heartbeat (a
    /// busy or paused process of this host is running, not gone).
    public var holderIsAliveHere: Bool {
        guard host == ProcessInfo.processInfo.hostName, pid > 0 else { return false }
        return pid == getpid() || kill(pid, 0) == 0 || errno == EPERM
    }

    public var describe: String {
        "\(kind.rawValue)\(backupId.map { " \($0)" } ?? "") on \(host) (pid \(pid), started \(Timestamps.iso8601(started)))"
    }
}

/// A command's claim on a repository, so that maintenance never removes what a running command still
/// needs. A lease is a folder `locks/<holder>/` holding one heartbeat object `hb-<time>.json`. A
/// heartbeat writes a new object and then removes the previous one: like everything in a repository,
/// lease objects are written once and never edited. A lease whose newest heartbeat is older than the
/// reader's stale timeout belongs to a holder that is gone or frozen; it may be broken (and is reported).
public final class Lease: Sendable {
    public static let folder = "locks"
    public static let heartbeatInterval: TimeInterval = 60
    /// Fifteen missed heartbeats.
    public static let defaultStaleAfter: TimeInterval = 15 * 60
    /// Five missed heartbeats: a shorter stale timeout would break the leases of healthy commands
    /// between two of their heartbeats.
    public static let minimumStaleAfter: TimeInterval = 5 * heartbeatInterval

    /// Refuses (exit 2) a stale timeout shorter than `minimumStaleAfter`.
    public static func checkStaleAfter(_ staleAfter: TimeInterval) throws {
        guard staleAfter >= minimumStaleAfter else {
            throw DRKitError(.usage, "--stale-after must be at least \(Int(minimumStaleAfter / 60))m (five heartbeats of \(Int(heartbeatInterval)) s): a shorter one would break the leases of running commands")
        }
    }

    public let record: LeaseRecord
    private let repository: Repository
    private let state = Locked((current: "", released: false, broken: false, timer: DispatchSourceTimer?.none))

    private init(record: LeaseRecord, repository: Repository) {
        self.record = record
        self.repository = repository
    }

    /// Writes this command's lease, then reads the others: if a live one `conflicts`, this lease is
    /// withdrawn and the command refused (exit 6), naming what runs. Writing before reading means two
    /// conflicting commands that start together never both go ahead.
    public static func acquire(_ kind: LeaseRecord.Kind, backupId: String? = nil, repository: Repository,
                               staleAfter: TimeInterval = defaultStaleAfter,
                               conflicts: (LeaseRecord) -> Bool = { _ in false }) throws -> Lease {
        let now = Date()
        let record = LeaseRecord(holder: BackupId.make(startedAt: now) + "-" + SecureRandom.hex(4), kind: kind, backupId: backupId,
                                 host: ProcessInfo.processInfo.hostName, pid: getpid(), started: now, heartbeat: now)
        let lease = Lease(record: record, repository: repository)
        try lease.beat()
        let listing = try Lease.list(in: repository, staleAfter: staleAfter)
        // A lease whose holder was a process of this host that is gone (kill -9) is removed at once,
        // rather than left for `repo clean`.
        for dead in listing.stale where dead.record.holderIsGone { try? Lease.breakStale(dead.keys, in: repository) }
        let others = listing.live.filter { $0.holder != record.holder && conflicts($0) }
        guard others.isEmpty else {
            lease.release()
            throw DRKitError(.refused, "\(kind.rawValue) refused: \(others.map(\.describe).joined(separator: "; ")) is running in \(repository.store.location); run it again when that has finished")
        }
        lease.startHeartbeat()
        return lease
    }

    private func key(at time: Date) -> String {
        "\(Lease.folder)/\(record.holder)/hb-\(Timestamps.compactMilliseconds(time)).json"
    }

    /// A new heartbeat object, then the previous one removed. A lease that disappeared (broken by a
    /// command that found it stale) is never written again: it stays broken, and the next
    /// `confirmHeld` says so.
    func beat() throws {
        var updated = record
        updated.heartbeat = Date()
        let next = key(at: updated.heartbeat)
        let (previous, broken) = state.withLock { ($0.current, $0.broken) }
        if broken { throw brokenError }
        guard next != previous else { return }
        if !previous.isEmpty, try !holds(previous) { throw markBroken() }
        do { try repository.store.put(key: next, bytes: [UInt8](try JSONCoding.encoder.encode(updated))) } catch {
            throw DRKitError.wrap(error, "writing the lease of \(record.describe)")
        }
        // Removed while this heartbeat was being written: the new object must not revive the lease.
        if !previous.isEmpty, try !holds(previous) {
            try? repository.store.delete(keys: [next])
            throw markBroken()
        }
        state.withLock { $0.current = next }
        if !previous.isEmpty { try? repository.store.delete(keys: [previous]) }
    }

    private func holds(_ key: String) throws -> Bool {
        do { return try repository.store.list(prefix: "\(Lease.folder)/\(record.holder)/").contains { $0.key == key } } catch {
            throw DRKitError.wrap(error, "checking the lease of \(record.describe)")
        }
    }

    private var brokenError: DRKitError {
        DRKitError(.repository, "the lease of \(record.describe) was broken by another command (it looked stale: this process was paused or cut off for longer than the stale timeout)")
    }

    private func markBroken() -> DRKitError {
        state.withLock {
            $0.broken = true
            $0.timer?.cancel()
            $0.timer = nil
        }
        return brokenError
    }

    private func startHeartbeat() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        timer.schedule(deadline: .now() + Lease.heartbeatInterval, repeating: Lease.heartbeatInterval)
        timer.setEventHandler { [weak self] in try? self?.beat() }
        timer.resume()
        state.withLock { $0.timer = timer }
    }

    /// Throws the lease message once a heartbeat has found the lease broken. No I/O: cheap enough to
    /// ask before every object, so a holder stops at its next object rather than at its commit.
    public func throwIfBroken() throws {
        if state.current.broken { throw brokenError }
    }

    /// Renews the lease and checks that nobody broke it meanwhile (another command found it stale).
    public func confirmHeld() throws {
        let before = state.current.current
        try beat()
        // A heartbeat within the same millisecond writes nothing and so checked nothing.
        if state.current.current == before, try !holds(before) { throw markBroken() }
    }

    /// Runs `body`; when it fails and this lease was broken meanwhile, the broken lease is the reason
    /// reported (the failure itself, a vanished file, says less).
    public func explaining<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            do { try confirmHeld() } catch let broken as DRKitError {
                throw DRKitError(broken.code, "\(broken.message); what failed: \(DRKitError.wrap(error).message)", cause: error)
            }
            throw error
        }
    }

    public func release() {
        let key = state.withLock { s -> String? in
            guard !s.released else { return nil }
            s.released = true
            s.timer?.cancel()
            s.timer = nil
            return s.current
        }
        if let key, !key.isEmpty { try? repository.store.delete(keys: [key]) }
    }

    deinit { release() }

    public struct Listing: Sendable {
        public var live: [LeaseRecord] = []
        /// Leases whose newest heartbeat is older than the stale timeout or whose holder is gone, with their objects.
        public var stale: [(record: LeaseRecord, keys: [String])] = []
    }

    /// Every lease in the repository, live or stale (no heartbeat for `staleAfter`, or its holder is a
    /// process of this host that is gone). One listing, then one read per lease.
    public static func list(in repository: Repository, staleAfter: TimeInterval, now: Date = Date()) throws -> Listing {
        let objects: [ObjectInfo]
        do { objects = try repository.store.list(prefix: folder + "/") } catch { throw DRKitError.wrap(error, "listing leases in \(repository.store.location)") }
        var byHolder: [String: [String]] = [:]
        for object in objects {
            let parts = object.key.split(separator: "/")
            guard parts.count == 3 else { continue }
            byHolder[String(parts[1]), default: []].append(object.key)
        }
        var listing = Listing()
        holders: for (holder, listed) in byHolder.sorted(by: { $0.key < $1.key }) {
            var keys = listed
            var newest = ""
            var bytes: [UInt8] = []
            // A heartbeat gone between the listing and the read was replaced by a newer one (the holder
            // renewed it) or released with the rest: the holder's folder, listed again, tells which.
            for attempt in 1... {
                guard let key = keys.max() else { continue holders }  // released
                newest = key
                do {
                    bytes = try repository.store.get(key: key)
                    break
                } catch let e as StorageError where e.kind == .notFound && attempt < 5 {
                    do { keys = try repository.store.list(prefix: "\(folder)/\(holder)/").map(\.key) } catch {
                        throw DRKitError.wrap(error, "listing lease \(holder) in \(repository.store.location)")
                    }
                } catch {
                    throw DRKitError.wrap(error, "reading lease \(key)")  // a storage failure, not corruption (exit 4)
                }
            }
            let record: LeaseRecord
            do { record = try JSONCoding.decoder.decode(LeaseRecord.self, from: Data(bytes)) } catch {
                throw DRKitError(.integrity, "lease \(newest) is unreadable: \(error)")
            }
            if record.holderIsAliveHere {
                listing.live.append(record)
            } else if now.timeIntervalSince(record.heartbeat) > staleAfter || record.holderIsGone {
                listing.stale.append((record, keys))
            } else {
                listing.live.append(record)
            }
        }
        return listing
    }

    /// Removes a stale lease's objects.
    public static func breakStale(_ keys: [String], in repository: Repository) throws {
        do { try repository.store.delete(keys: keys) } catch { throw DRKitError.wrap(error, "breaking a stale lease") }
    }
}
