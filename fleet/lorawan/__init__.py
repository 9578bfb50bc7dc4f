"""Host-side LoRaWAN 1.0.x frames: decode and encode PHYPayloads, MICs, FRMPayload encryption, join-accepts
(the network server's side) and session keys. The firmware's MAC is in firmware/bysans/lorawan."""

from .crypto import Key, derive_session_keys
from .phy import (DataFrame, EncryptedJoinAccept, JoinAccept, JoinRequest, MType, Proprietary,
                  build_data_frame, build_join_accept, build_join_request, decode, decode_join_accept)
from .report import describe

__all__ = ["Key", "derive_session_keys", "DataFrame", "EncryptedJoinAccept", "JoinAccept", "JoinRequest",
           "MType", "Proprietary", "build_data_frame", "build_join_accept", "build_join_request", "decode",
           "decode_join_accept", "describe"]
