// UART console output without String: a single String interpolation costs ~20 KB
// of flash (DESIGN.md, house rule 3), so the firmware writes StaticStrings and
// bytes (TDOSNode's TextLine formats numbers).
import TDOSBoard
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSNode
#endif

public enum Console {
    public static func write(_ text: StaticString) {
        text.withUTF8Buffer { tdos_console_write($0.baseAddress, UInt32($0.count)) }
    }

    public static func write(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { tdos_console_write($0.baseAddress, UInt32($0.count)) }
    }

    public static func write(_ line: TextLine) { write(bytes: line.bytes) }

    public static func line(_ text: StaticString) {
        write(text)
        write("\n")
    }

    public static func line(_ line: TextLine) {
        write(bytes: line.bytes)
        write("\n")
    }
}
