// The kernel image (kernel.uf2): compiled with Firmware/Pico into TDOSPico. A
// constant role lets NodeRuntime<PicoPlatform> keep only this role's code:
// the weather-station app and the display; no sampler, no storage serving, no sensor drivers.
import TDOSCore
import TDOSNode

extension PicoPlatform {
    public static var imageRole: NodeRole? { .kernel }
}
