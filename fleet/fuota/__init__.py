"""FUOTA on the host: the LoRaWAN Fragmented Data Block Transport (TS004 v1.0.0, FPort 201).

`fragments.encode` cuts a file into the DataFragment payloads a network server sends (the uncoded fragments,
then the coded ones of the specification's parity-check matrix); `rebuild.rebuild` puts a file together again
from any of them whose rows have full rank. The messages and the matrix are the firmware's declaration,
firmware/bysans/fuota/frag_spec.py (`spec.SPEC`); docs/formats/fuota.md describes them.
"""
