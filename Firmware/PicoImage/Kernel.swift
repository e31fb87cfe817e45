// The kernel image (kernel.uf2): compiled with Firmware/Pico into TDOSPico. A
// constant role lets NodeRuntime<PicoPlatform> keep only this role's code:
// the weather-station app and the display; no sampler, no storage serving, no sensor drivers.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
import TDOSNode
#endif

extension PicoPlatform {
    public static var imageRole: NodeRole? { .kernel }
}
