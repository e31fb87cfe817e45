// The log flash on Linux: a file the size of the region, with NOR semantics
// emulated (erase writes 0xFF; program ANDs into what is there) so the log
// behaves exactly as on the board. `program` and `erase` return only after
// fsync: a read-back that matches is then durable, which is what the log's ack
// means.
import Glibc
import TDOSCore

public final class FileLogFlash: LogFlash {
    public let sectorCount: Int
    public let sectorSize: Int
    public let pageSize: Int
    let fd: Int32
    var buffer: [UInt8] = []

    public enum OpenError: Error { case cannotOpen(errno: Int32), cannotSize(errno: Int32) }

    /// Opens (creating, all 0xFF, if missing or short) a region of
    /// sectorCount x sectorSize bytes. Defaults: the board's 256 KB log region.
    public init(path: String, sectorCount: Int = 64, sectorSize: Int = 4096, pageSize: Int = 256) throws(OpenError) {
        precondition(sectorCount >= 2 && sectorSize % pageSize == 0)
        self.sectorCount = sectorCount
        self.sectorSize = sectorSize
        self.pageSize = pageSize
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .cannotOpen(errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotSize(errno: errno) }
        let size = sectorCount * sectorSize
        if Int(st.st_size) < size {
            // New (or short) file: the missing part is erased flash.
            let blank = [UInt8](repeating: 0xFF, count: size - Int(st.st_size))
            let n = blank.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(st.st_size)) }
            guard n == blank.count, fsync(fd) == 0 else { throw .cannotSize(errno: errno) }
        }
    }

    deinit { close(fd) }

    public func read(offset: Int, count: Int, into out: inout [UInt8]) throws(LogFlashError) {
        guard offset >= 0, count >= 0, offset + count <= sectorCount * sectorSize else { throw .outOfRange }
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: repeatElement(0, count: count))
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            guard n > 0 else { throw .io }
            done += n
        }
    }

    func writeAll(_ bytes: [UInt8], at offset: Int) throws(LogFlashError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            guard n > 0 else { throw .io }
            done += n
        }
        guard fsync(fd) == 0 else { throw .io }
    }

    public func erase(sector: Int) throws(LogFlashError) {
        guard sector >= 0, sector < sectorCount else { throw .outOfRange }
        try writeAll([UInt8](repeating: 0xFF, count: sectorSize), at: sector * sectorSize)
    }

    public func program(offset: Int, bytes: [UInt8]) throws(LogFlashError) {
        guard offset >= 0, offset + bytes.count <= sectorCount * sectorSize else { throw .outOfRange }
        try read(offset: offset, count: bytes.count, into: &buffer)
        for i in 0..<bytes.count { buffer[i] &= bytes[i] }
        try writeAll(buffer, at: offset)
    }
}
