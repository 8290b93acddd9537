import CLinux
import Foundation
import Lisafs
import Logging
import SealedProvider
import SealedStore

/// The `serve --store` path: opening the store, the provider's options, and a
/// clean shutdown (every file committed) on SIGTERM, SIGINT or SIGHUP.
enum StoreServing {
    /// Blocks the termination signals in this thread and every thread started
    /// after it, so only the waiter started by `commitOnSignals` receives them.
    /// Call before anything starts a thread.
    static func blockTerminationSignals() {
        _ = clinux_block_termination_signals()
    }

    static func makeProvider(storePath: String, key: KeyMaterial, options: SealedProvider.Options,
                             logger: Logger) throws -> SealedProvider {
        // Each scratch and cached file holds descriptors.
        _ = clinux_raise_nofile_limit()
        let store = try SealedStore.open(at: storePath, key: key)
        do {
            return try SealedProvider(store: store, options: options, logger: logger)
        } catch {
            store.close()
            throw error
        }
    }

    /// On a termination signal: commit everything durably, then exit 0.
    static func commitOnSignals(_ provider: SealedProvider, logger: Logger) {
        let thread = Thread {
            let signal = clinux_wait_termination_signal()
            logger.notice("signal \(signal): committing and shutting down")
            provider.shutdown()
            SecretBytes.wipeAllForExit()
            exit(0)
        }
        thread.name = "sealgofer-signals"
        thread.start()
    }
}

/// Sizes like 4096, 64K, 64M, 1G, 1.5G (binary units).
enum ByteSize {
    static func parse(_ text: String) -> UInt64? {
        let units: [Character: Double] = ["K": 1024, "M": 1024 * 1024, "G": 1024 * 1024 * 1024, "T": 1024 * 1024 * 1024 * 1024]
        var number = text.uppercased()
        if number.hasSuffix("IB") { number.removeLast(2) } else if number.hasSuffix("B") { number.removeLast() }
        var factor: Double = 1
        if let last = number.last, let f = units[last] { factor = f; number.removeLast() }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        let bytes = value * factor
        guard bytes < 1.8e19 else { return nil }
        return UInt64(bytes)
    }
}
