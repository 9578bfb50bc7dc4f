# The application-layer packages that set up a FUOTA session, declared once: LoRa Alliance TS003
# Application Layer Clock Synchronization v1.0.0 (FPort 202) and TS005 Remote Multicast Setup v1.0.0
# (FPort 200). The firmware (bysans.fuota.clock, bysans.fuota.multicast) and the host (fleet.fuota.clock,
# fleet.fuota.multicast, through fleet.firmware_data) both read this file. Plain data only: no imports.
# docs/formats/fuota.md ("Clock sync", "Multicast setup") describes every field.
#
# A package's FRMPayload is a sequence of commands: CID (1 byte) | fixed-length payload. Multi-byte fields
# are little-endian. The lengths below exclude the CID byte. A command with an unknown CID, or cut short,
# ends the processing of the frame (the commands after it cannot be delimited).

# GPS time (the packages' clock): seconds since 1980-01-06 00:00:00 UTC, without leap seconds.
GPS_UNIX_OFFSET_S = 315964800   # Unix time of the GPS epoch
GPS_LEAP_S = 18                 # GPS - UTC since 2017-01-01 (none announced since)

PACKAGE_VERSION = 0x00          # both packages: request without payload; answer PackageIdentifier, Version

# --- TS003 clock sync ----------------------------------------------------------------------------------
CLOCK_PORT = 202
CLOCK_PACKAGE = 1
CLOCK_VERSION = 1
APP_TIME = 0x01           # up AppTimeReq: DeviceTime u32 | Param u8 (TokenReq 3:0, AnsRequired bit 4)
#                           down AppTimeAns: TimeCorrection i32 | Param u8 (TokenAns 3:0)
PERIODICITY = 0x02        # down DeviceAppTimePeriodicityReq: Period u8 (3:0: AppTimeReq every 128*2^Period s)
#                           up DeviceAppTimePeriodicityAns: Status u8 (bit 0 NotSupported) | Time u32
FORCE_RESYNC = 0x03       # down ForceDeviceResyncReq: ForceConf u8 (2:0 NbTransmissions); no answer
CLOCK_DOWN_LEN = {PACKAGE_VERSION: 0, APP_TIME: 5, PERIODICITY: 1, FORCE_RESYNC: 1}
CLOCK_UP_LEN = {PACKAGE_VERSION: 2, APP_TIME: 5, PERIODICITY: 5}
TOKEN_MASK = 0x0F
ANS_REQUIRED = 0x10
PERIOD_BASE_S = 128       # AppTimeReq period = PERIOD_BASE_S << Period
NB_TRANS_MASK = 0x07

# --- TS005 remote multicast setup ----------------------------------------------------------------------
MCAST_PORT = 200
MCAST_PACKAGE = 2
MCAST_VERSION = 1
MC_STATUS = 0x01          # down McGroupStatusReq: CmdMask u8 (3:0 ReqGroupMask)
#                           up McGroupStatusAns: Status u8 (6:4 NbTotalGroups, 3:0 AnsGroupMask), then per
#                           group in AnsGroupMask (lowest ID first): McGroupID u8 | McAddr u32
MC_SETUP = 0x02           # down McGroupSetupReq: McGroupIDHeader u8 (1:0) | McAddr u32 | McKey_encrypted 16 |
#                           minMcFCount u32 | maxMcFCount u32;  up McGroupSetupAns: u8 (bit 2 IDerror, 1:0 ID)
MC_DELETE = 0x03          # down McGroupDeleteReq: u8 (1:0 McGroupID)
#                           up McGroupDeleteAns: u8 (bit 2 McGroupUndefined, 1:0 McGroupID)
MC_CLASS_C = 0x04         # down McClassCSessionReq: McGroupIDHeader u8 | SessionTime u32 (GPS s) |
#                           SessionTimeOut u8 (3:0: the session lasts 2^TimeOut s) | DLFrequency u24 (x100 Hz) |
#                           DR u8;  up McClassCSessionAns: Status u8 (bit 4 McGroupUndefined, bit 3 FreqError,
#                           bit 2 DRError, 1:0 McGroupID) [| TimeToStart u24 (s), only when no error bit]
MCAST_DOWN_LEN = {PACKAGE_VERSION: 0, MC_STATUS: 1, MC_SETUP: 29, MC_DELETE: 1, MC_CLASS_C: 10}
MCAST_UP_LEN = {PACKAGE_VERSION: 2, MC_STATUS: 1, MC_SETUP: 1, MC_DELETE: 1, MC_CLASS_C: 1}  # + variable parts
MC_GROUPS = 4             # McGroupID 0..3: this firmware keeps all four
GROUP_MASK = 0x03
ID_ERROR = 0x04           # McGroupSetupAns
UNDEFINED = 0x04          # McGroupDeleteAns
CC_UNDEFINED = 0x10       # McClassCSessionAns
CC_FREQ_ERROR = 0x08
CC_DR_ERROR = 0x04
TIMEOUT_MASK = 0x0F
FREQ_STEP_HZ = 100

# Key derivation for LoRaWAN 1.0.x end-devices (TS005 v1.0.0 §4.3; pad16 = zero fill to 16 bytes):
#   McRootKey = aes128_encrypt(GenAppKey, 0x00 | pad16)        (LoRaWAN 1.1: AppKey and 0x20 | pad16)
#   McKEKey   = aes128_encrypt(McRootKey, 0x00 | pad16)
#   McKey     = aes128_encrypt(McKEKey, McKey_encrypted)      (the server sent aes128_decrypt(McKEKey, McKey))
#   McAppSKey = aes128_encrypt(McKey, 0x01 | McAddr (LE) | pad16)
#   McNwkSKey = aes128_encrypt(McKey, 0x02 | McAddr (LE) | pad16)
ROOT_KEY_PREFIX_10X = 0x00
ROOT_KEY_PREFIX_11 = 0x20
KE_KEY_PREFIX = 0x00
MC_APP_S_PREFIX = 0x01
MC_NWK_S_PREFIX = 0x02
