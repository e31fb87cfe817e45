// The sensor image (sensor.uf2): compiled with Firmware/Pico into TDOSPico. A
// constant role lets NodeRuntime<PicoPlatform> keep only this role's code:
// the sampler and the sensor drivers; no weather-station app.
import TDOSCore
import TDOSNode

extension PicoPlatform {
    public static var imageRole: NodeRole? { .sensor }
}
