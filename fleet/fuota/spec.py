"""The TS004 declaration the device decodes with (firmware/bysans/fuota/frag_spec.py), executed by path."""

from .. import firmware_data

SPEC = firmware_data.load("bysans/fuota/frag_spec.py")
