"""Releases: build (mpy-cross per board arch), sign (release keys per kommune), verify (the device's rules
and reason codes), publish (a static, content-addressed update repository).

Formats: docs/formats/update-repository.md. Library only: nothing here prints or exits.
"""

from .reasons import Reason
from .verify import Root, Verdict, load_root, verify_release, walk_roots

__all__ = ["Reason", "Root", "Verdict", "load_root", "verify_release", "walk_roots"]
