/// The linux_dirent64 records in the first `count` bytes of a getdents64 buffer, each
/// bounds-checked; "." and ".." are skipped.
struct DirectoryRecords: Sequence, IteratorProtocol {
    private let buffer: [UInt8]
    private let count: Int
    private var position = 0

    init(_ buffer: [UInt8], count: Int) {
        self.buffer = buffer
        self.count = Swift.min(count, buffer.count)
    }

    mutating func next() -> (name: [UInt8], type: UInt8)? {
        let headerSize = 19 // d_ino 8, d_off 8, d_reclen 2, d_type 1
        while position + headerSize <= count {
            let length = Int(buffer[position + 16]) | Int(buffer[position + 17]) << 8
            guard length >= headerSize, position + length <= count else { return nil }
            let type = buffer[position + 18]
            let name = Array(buffer[(position + headerSize)..<(position + length)].prefix { $0 != 0 })
            position += length
            if name.isEmpty || name == [46] || name == [46, 46] { continue }
            return (name, type)
        }
        return nil
    }
}
