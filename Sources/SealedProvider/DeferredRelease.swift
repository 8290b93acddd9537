import CLinux
import Foundation

/// Releases evicted cache entries on a background thread: closing an entry's
/// scratch (freeing its tmpfs inode and pages), its ciphertext descriptors and
/// its store handle (zeroing its keys) is work the request that happened to
/// evict it need not wait for. Every create in a steady state evicts one unused
/// entry, so this is a fixed share of each create+close moved to an idle core,
/// not removed.
///
/// Only small entries come here (scratch ≤ 64 KiB, the caller decides): the
/// space a large scratch holds is freed at once, where a fill waiting for it
/// would look. The queue holds at most 64 (≤ 4 MiB of scratch not yet freed,
/// within the private tmpfs's slack above `--scratch-limit`); when it is full
/// the caller releases inline. The thread wakes once 16 are queued (an
/// entry may wait in the queue until then, which costs nothing but its
/// descriptors). `stop` runs whatever is queued before it returns (shutdown,
/// before the store closes).
final class DeferredRelease: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [() -> Void] = []
    private var stopping = false
    private var finished = false
    private let limit: Int
    private let batch = 16

    init(limit: Int = 64) {
        self.limit = limit
        let thread = Thread { [self] in
            _ = clinux_name_this_thread("sealgofer-release")   // the kernel's name (cut at 15 bytes)
            _ = clinux_lower_this_thread_priority()
            run()
        }
        thread.name = "sealgofer-release"
        thread.start()
    }

    /// Queues `release`; false (nothing queued) when the queue is full or stopped.
    func enqueue(_ release: @escaping () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, queue.count < limit else { return false }
        queue.append(release)
        // One wake-up per batch, not per entry: waking a thread costs the
        // request path more than a close.
        if queue.count == batch { condition.signal() }
        return true
    }

    /// Runs what is queued, then ends the thread. Idempotent.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        condition.lock()
        while true {
            while queue.count < batch && !stopping { condition.wait() }
            if queue.isEmpty && stopping { break }
            let batch = queue
            queue = []
            condition.unlock()
            for release in batch { release() }
            condition.lock()
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
