"""Payload format (v2, and v1 frames) on the host: the decoder, the JavaScript decoders for network servers, and the
CayenneLPP reference encoder the benchmarks compare against. The format itself is declared once, in
firmware/bysans/payload_spec.py.
"""

from .decode import decode, decode_columns
from .spec import load_spec, spec_tables

__all__ = ["decode", "decode_columns", "load_spec", "spec_tables"]
