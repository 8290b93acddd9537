#if canImport(Glibc)
import Glibc
#endif

/// Every regular file under data/, one entry per inode (hard links are moved once), in path order.
/// A directory that cannot be listed is an error: rotation and retirement must see every file.
struct DataFileList {
    struct Entry {
        var components: [String]
        var path: String { components.joined(separator: "/") }
        /// Ciphertext length (st_size).
        var size: UInt64
        var dev: UInt64
        var ino: UInt64
    }

    var entries: [Entry] = []
    var totalBytes: UInt64 { entries.reduce(0) { $0 + $1.size } }

    static func scan(dataFD: Int32) throws -> DataFileList {
        var list = DataFileList()
        var seen = Set<[UInt64]>()
        try walk(dataFD, [], &list, &seen)
        return list
    }

    private static func walk(_ dirFD: Int32, _ prefix: [String], _ list: inout DataFileList, _ seen: inout Set<[UInt64]>) throws {
        for (name, _) in try listDirectory(dirFD).sorted(by: { $0.name < $1.name }) {
            let st = try statAt(dirFD, name)
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let sub = try openDirectory(dirFD, name)
                defer { close(sub) }
                try walk(sub, prefix + [name], &list, &seen)
            case S_IFREG:
                let key = [UInt64(st.st_dev), UInt64(st.st_ino)]
                guard seen.insert(key).inserted else { continue }
                list.entries.append(Entry(components: prefix + [name], size: UInt64(st.st_size), dev: key[0], ino: key[1]))
            default:
                continue   // symlinks, sockets, FIFOs: nothing encrypted
            }
        }
    }
}
