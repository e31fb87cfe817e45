// Text output for the node's status: the Pimoroni Pico Display (ST7789, 240x135,
// 48x16 characters at scale 1) when the config says one is attached, else the
// UART console (as the seed firmware did). The panel cannot be detected (it is
// write-only), hence the config flag.
import TDOSBoard

public struct StatusDisplay {
    public enum Kind { case console, picoDisplay }
    public let kind: Kind

    public static let columns = Int(TDOS_DISPLAY_WIDTH / TDOS_DISPLAY_CELL_WIDTH)
    public static let rows = Int(TDOS_DISPLAY_HEIGHT / TDOS_DISPLAY_CELL_HEIGHT)

    public static let white: UInt16 = 0xFFFF
    public static let black: UInt16 = 0x0000
    public static let green: UInt16 = 0x07E0
    public static let red: UInt16 = 0xF800

    /// Falls back to the console when the panel driver refuses (the CI stub).
    public init(picoDisplayAttached: Bool) {
        kind = picoDisplayAttached && tdos_display_init() == TDOS_OK ? .picoDisplay : .console
    }

    public func clear() {
        if kind == .picoDisplay {
            tdos_display_fill(0, 0, TDOS_DISPLAY_WIDTH, TDOS_DISPLAY_HEIGHT, StatusDisplay.black)
        }
    }

    /// Writes `text` on text row `row` (0-based, at `scale`), padding the rest of
    /// the row with spaces so that a shorter line erases a longer one. On the
    /// console: the text as one line.
    public func show(row: Int, _ text: [UInt8], colour: UInt16 = StatusDisplay.white, scale: UInt32 = 1) {
        switch kind {
        case .console:
            Console.write(bytes: text)
            Console.write("\n")
        case .picoDisplay:
            let columns = StatusDisplay.columns / Int(scale)
            var line = text
            if line.count > columns { line.removeLast(line.count - columns) }
            while line.count < columns { line.append(0x20) }
            line.withUnsafeBufferPointer {
                tdos_display_text(0, UInt32(row) * TDOS_DISPLAY_CELL_HEIGHT * scale, $0.baseAddress, UInt32($0.count),
                                  colour, StatusDisplay.black, scale)
            }
        }
    }
}
