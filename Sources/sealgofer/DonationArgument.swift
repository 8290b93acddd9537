import ArgumentParser
import SealedProvider

/// `--donate all|read-only` on `serve` and `run`.
extension DonationPolicy: ExpressibleByArgument {}
