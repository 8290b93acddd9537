import CLinux

/// Process-wide malloc settings for a serving process; executables call this at
/// start (a library should not change them on its own).
///
/// Every PRead reply is a fresh buffer of up to the message size (1 MiB or more).
/// With glibc's default *dynamic* thresholds such a block is sometimes mmapped and
/// sometimes carved from the heap and trimmed back to the kernel when freed, so
/// the next RPC faults in and zeroes a megabyte of new pages again: measured here
/// (`sealed-bench --only commit`, "read by 1 MiB PRead RPCs") as 337 MiB/s
/// against 1264 MiB/s with fixed thresholds. Fixed thresholds keep blocks below
/// 8 MiB on the heap and keep up to 64 MiB of freed heap instead of trimming it.
public enum AllocatorTuning {
    public static func applyForServing() {
        _ = clinux_fix_malloc_thresholds(8 << 20, 64 << 20)
    }
}
