// The storage image (storage.uf2): compiled with Firmware/Pico into TDOSPico. A
// constant role lets NodeRuntime<PicoPlatform> keep only this role's code:
// storage serving (logger, config); no weather-station app, no sampler.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
import TDOSNode
#endif

extension PicoPlatform {
    public static var imageRole: NodeRole? { .storage }
}
