"""The lab: code that imitates the world around the product, for tests, benchmarks and `fleet sim`.

    lab.netserver          a minimal LoRaWAN network server behind the Semtech UDP protocol
    lab.telemetry_samples  uplink events as ChirpStack and The Things Stack send them (docs/samples/)
    lab.ota                an OTA lab: throwaway keys, signed releases, `fleet serve`, provisioned boards
    lab.serialconsole      a plain pyserial console: what a technician's terminal sees

The lab may import fleet and provisioning; the library (fleet/, provisioning/) never imports the lab.
"""
