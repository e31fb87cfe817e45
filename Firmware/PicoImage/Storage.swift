// The storage image (storage.uf2): compiled with Firmware/Pico into TDOSPico. A
// constant role lets NodeRuntime<PicoPlatform> keep only this role's code:
// storage serving (logger, config); no weather-station app, no sampler.
import TDOSCore
import TDOSNode

extension PicoPlatform {
    public static var imageRole: NodeRole? { .storage }
}
