// The sensor image (sensor.uf2): compiled with Firmware/Pico into TDOSPico. A
// constant role lets NodeRuntime<PicoPlatform> keep only this role's code:
// the sampler and the sensor drivers; no weather-station app.
#if !TDOS_ONE_MODULE  // the board images compile all firmware Swift as one module
import TDOSCore
import TDOSNode
#endif

extension PicoPlatform {
    public static var imageRole: NodeRole? { .sensor }
}
