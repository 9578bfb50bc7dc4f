# Payload format v2, declared once. The firmware encoder (bysans/payload.py) and the host decoder
# (fleet/codec/, which loads this file by path) both read these tables; docs/formats/payload.md explains
# them with worked examples. Plain data only: this module must import under MicroPython and CPython.
#
# Frame layout (multi-byte fields big-endian, bit stream most significant bit first):
#   byte 0  version (VERSION; decoders also read the versions in OLDER_KINDS)
#   byte 1  net << 7 | kind << 5 | count   kind: KIND_*, count: readings in the frame, 0..COUNT_MAX;
#                                          net (NET_FLAG): a network status byte follows
#   byte 2  if net: the network status (below); what follows starts one byte later
#   count == 0 ends the frame here (an empty batch: a heartbeat).
#   bit stream, from byte 2 (byte 3 with the status byte):
#     interval_min     INTERVAL_BITS unsigned   minutes between readings
#     age_min          Rice order 0, raw AGE_BITS  minutes from the newest reading to the uplink
#     faults           1 bit                     a fault map follows
#     frame fields     per kind (FRAME_FIELDS)   signed, two's complement, e.g. the waste fill-rate trend
#     fault map        if faults: per channel 1 bit; a set bit is followed by `count` bits, one per
#                      reading (oldest first), 1 = that channel's sensor failed for that reading
#     channels         in table order: base (the oldest reading) in `bits` bits as an unsigned wire
#                      value, then, if count > 1, MODE_BITS of mode and count - 1 deltas:
#                      mode 0 = every reading equals the base; mode m > 0 = deltas in Rice code of
#                      order m - 1 (below), of the zigzag signed difference (LINEAR) or the XOR (FLAGS)
#                      with the previous reading, raw width bits + 1. A faulty reading is coded as a
#                      repeat of the previous one.
#   zero bits pad the stream to a whole byte; nothing may follow.
# Rice code of order k for z >= 0 with raw width r: q = z >> k; if q < RICE_ESCAPE: q one bits, a zero
# bit, then the k low bits of z; else RICE_ESCAPE one bits, then z in r bits.
# zigzag(d) = 2d for d >= 0, -2d - 1 for d < 0.
# LINEAR channel: value = min + wire * step (wire 0 .. 2**bits - 1; the encoder clamps).
# Network status byte: high 4 bits zero, low 4 bits the outcome of the node's last WiFi join, when it
# failed (a code of NET_STATUS_NAMES, 1..); sent in every uplink until a later join succeeds. A frame
# without it is byte for byte what it was before the status existed (NET_FLAG clear).
try:
    from micropython import const
except ImportError:  # CPython, when the host loads this file
    def const(x):
        return x

VERSION = const(2)  # v2: the compact environment table (v1: ENV_CHANNELS_V1); the coding is the same
COUNT_MAX = const(31)
KIND_SHIFT = const(5)
KIND_MASK = const(0x03)  # of byte 1 >> KIND_SHIFT; bit 7 of byte 1 is NET_FLAG
NET_FLAG = const(0x80)
NET_CODE_MASK = const(0x0F)
COUNT_MASK = const(0x1F)
INTERVAL_BITS = const(8)
MODE_BITS = const(3)
MODE_MAX = const(7)
RICE_ESCAPE = const(8)
AGE_BITS = const(16)  # raw width of age_min when it escapes (0 .. 65535 minutes)

KIND_WASTE = const(1)
KIND_ENV = const(2)

LINEAR = const(0)
FLAGS = const(1)

# Channel tables: (name, coding, bits, min, step). The name carries the unit of the decoded value.
# Resolution against CayenneLPP (REFERENCE.md §3) is compared in docs/formats/payload.md.
W_DIST = const(0)
W_FILL = const(1)
W_TEMP = const(2)
W_BATT = const(3)
W_FLAGS = const(4)
WASTE_CHANNELS = (
    ("dist_mm", LINEAR, 14, 0, 1),          # 0 .. 16383 mm, 1 mm
    ("fill_bp", LINEAR, 14, 0, 1),          # 0 .. 10000 (0.01 % steps; 10000 = full)
    ("temp_cdeg", LINEAR, 12, -10000, 10),  # -100.0 .. 309.5 degC, 0.1 degC
    ("batt_mv", LINEAR, 10, 0, 10),         # 0 .. 10230 mV, 10 mV
    ("flags", FLAGS, 3, 0, 1),              # bit 0 tilt, bit 1 pickup, bit 2 fire
)
FLAG_TILT = const(1)
FLAG_PICKUP = const(2)
FLAG_FIRE = const(4)
WASTE_FLAG_NAMES = ("tilt", "pickup", "fire")

E_TEMP = const(0)
E_RH = const(1)
E_PRESSURE = const(2)
E_CO2 = const(3)
E_PM2_5 = const(4)
E_PM10 = const(5)
E_BATT = const(6)
ENV_CHANNELS = (  # v2: each step at or under the sensor's precision, ranges of the sensors (docs/formats/payload.md)
    ("temp_cdeg", LINEAR, 11, -5000, 10),   # -50.0 .. 154.7 degC, 0.1 degC (BME280: -40 .. 85 degC)
    ("rh_permille", LINEAR, 7, 0, 10),      # 0 .. 127 %RH, 1 %RH (BME280: +-3 %RH)
    ("pressure_pa", LINEAR, 12, 30000, 20),  # 300.0 .. 1119.0 hPa, 0.2 hPa (BME280: 300 .. 1100 hPa, +-1 hPa)
    ("co2_ppm", LINEAR, 13, 0, 5),          # 0 .. 40955 ppm, 5 ppm (SCD4x: 0 .. 40000 ppm, +-(50 ppm + 5 %))
    ("pm2_5_ugm3", LINEAR, 10, 0, 1),       # 0 .. 1023 ug/m3, 1 ug/m3 (SPS30: 0 .. 1000 ug/m3)
    ("pm10_ugm3", LINEAR, 10, 0, 1),        # 0 .. 1023 ug/m3, 1 ug/m3
    ("batt_mv", LINEAR, 8, 0, 20),          # 0 .. 5100 mV, 20 mV (a LiPo cell: 3000 .. 4200 mV)
)
ENV_CHANNELS_V1 = (  # payload v1's environment table: old frames still decode (the host reads it only)
    ("temp_cdeg", LINEAR, 12, -10000, 10),  # -100.0 .. 309.5 degC, 0.1 degC
    ("rh_permille", LINEAR, 8, 0, 5),       # 0 .. 127.5 %, 0.5 %
    ("pressure_pa", LINEAR, 14, 30000, 10),  # 300.00 .. 1938.30 hPa, 0.1 hPa
    ("co2_ppm", LINEAR, 16, 0, 1),          # 0 .. 65535 ppm, 1 ppm
    ("pm2_5_ugm3", LINEAR, 11, 0, 1),       # 0 .. 2047 ug/m3, 1 ug/m3
    ("pm10_ugm3", LINEAR, 11, 0, 1),        # 0 .. 2047 ug/m3, 1 ug/m3
    ("batt_mv", LINEAR, 10, 0, 10),         # 0 .. 10230 mV, 10 mV
)

# Frame-level fields, after the fault flag: (name, bits), signed two's complement (the encoder clamps).
WASTE_FRAME_FIELDS = (
    ("fill_rate_bp_h", 12),  # fill-rate trend, 0.01 % per hour (least squares since the last pickup)
)
ENV_FRAME_FIELDS = ()

# kind -> (name, channels, frame fields, names of the FLAGS bits): what the encoder writes (VERSION)
KINDS = {
    KIND_WASTE: ("waste", WASTE_CHANNELS, WASTE_FRAME_FIELDS, WASTE_FLAG_NAMES),
    KIND_ENV: ("env", ENV_CHANNELS, ENV_FRAME_FIELDS, ()),
}
# older version -> its KINDS; a decoder reads these too (frame layout and coding are those above)
OLDER_KINDS = {
    1: {KIND_WASTE: KINDS[KIND_WASTE], KIND_ENV: ("env", ENV_CHANNELS_V1, ENV_FRAME_FIELDS, ())},
}

# The network status codes: bysans.wifi's outcomes of a failed join (index = code; 0 is never sent).
NET_STATUS_NAMES = ("", "NO_CREDENTIALS", "NO_AP_FOUND", "WRONG_PASSWORD", "JOIN_TIMEOUT", "BEACON_TIMEOUT",
                    "NO_COMPATIBLE_SECURITY", "CONNECT_FAIL", "HANDSHAKE_TIMEOUT", "RADIO")
