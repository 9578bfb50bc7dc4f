"""A new device's LoRaWAN identity (LoRaWAN 1.0.x OTAA), made when it is enrolled.

- DevEUI: the EUI-64 of the chip's 48-bit MAC where there is one (the MAC's OUI, FFFE, the MAC's last three
  bytes: 24:0A:C4:12:34:56 -> 240AC4FFFE123456), else 8 random bytes marked locally administered.
- JoinEUI: given, else FLEET_JOIN_EUI, else 0000000000000000 (a network server's own join server).
- AppKey: 16 bytes from the operating system's CSPRNG.

The identifiers themselves (parsing, the `Identity` that holds them, its hidden AppKey) are fleet's core:
fleet/identifiers.py, which the registry stores them with.
"""

import os
import secrets

from fleet.errors import BadIdentifier
from fleet.identifiers import Identity, eui64_from_mac, parse_app_key, parse_eui, parse_mac

ENV_JOIN_EUI = "FLEET_JOIN_EUI"
DEFAULT_JOIN_EUI = "0000000000000000"


def random_dev_eui() -> str:
    """8 random bytes, marked locally administered (bit 1 of the first byte) and unicast (bit 0 clear)."""
    b = bytearray(secrets.token_bytes(8))
    b[0] = (b[0] | 0x02) & ~0x01 & 0xFF
    return bytes(b).hex().upper()


def new_app_key() -> bytes:
    return secrets.token_bytes(16)


def default_join_eui() -> str:
    env = os.environ.get(ENV_JOIN_EUI)
    return parse_eui(env, f"JoinEUI (from {ENV_JOIN_EUI})") if env else DEFAULT_JOIN_EUI


def new_identity(*, mac=None, dev_eui=None, join_eui=None, app_key=None) -> Identity:
    """A fresh identity: DevEUI from `dev_eui`, else from `mac`, else random; AppKey given or new.

    When both `dev_eui` and `mac` are given they must agree.
    """
    if dev_eui is not None:
        eui = parse_eui(dev_eui)
        if mac is not None and eui64_from_mac(mac) != eui:
            raise BadIdentifier(f"DevEUI {eui} is not the EUI-64 of MAC {parse_mac(mac).hex(':')} "
                                f"({eui64_from_mac(mac)})", hint="give the MAC or the DevEUI, or make them agree")
    elif mac is not None:
        eui = eui64_from_mac(mac)
    else:
        eui = random_dev_eui()
    return Identity(dev_eui=eui,
                    join_eui=parse_eui(join_eui, "JoinEUI") if join_eui is not None else default_join_eui(),
                    app_key=parse_app_key(app_key) if app_key is not None else new_app_key())
