import Logging

/// swift-log set up once per process: human-readable lines on stderr.
enum StderrLogging {
    static func bootstrap(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "sealgofer")
        logger.logLevel = level
        return logger
    }
}
