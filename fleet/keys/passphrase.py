"""Where passphrases come from: a callable the caller supplies (the CLI prompts), or the environment.

The library never prompts by itself and never keeps a passphrase after a key is opened or written.
"""

import os
from typing import Callable, Optional

from ..errors import KeyPassphraseError

ENV = "FLEET_KEY_PASSPHRASE"
ENV_NEW = "FLEET_NEW_KEY_PASSPHRASE"


class Passphrase:
    """A passphrase source. `get(what)` for opening a key, `get_new(what)` for protecting a new one.

    `prompt(what, new)` is called when the environment has none (for a new key the CLI asks twice).
    The environment: FLEET_KEY_PASSPHRASE; for new keys FLEET_NEW_KEY_PASSPHRASE first (so rotate-root
    can open the old root key and protect the new one with different passphrases).
    """

    def __init__(self, prompt: Optional[Callable[[str, bool], str]] = None, *, environ=None):
        self._prompt = prompt
        self._env = os.environ if environ is None else environ

    def __repr__(self):
        return "<Passphrase (not shown)>"

    def _ask(self, what: str, new: bool) -> bytes:
        if self._prompt is None:
            names = f"{ENV_NEW} or {ENV}" if new else ENV
            raise KeyPassphraseError(f"a passphrase is needed for {what}, and none was given",
                                     hint=f"set {names}, or run the command in a terminal to be asked")
        value = self._prompt(what, new)
        return value.encode() if isinstance(value, str) else value

    def get(self, what: str) -> bytes:
        env = self._env.get(ENV)
        return env.encode() if env else self._ask(what, False)

    def get_new(self, what: str) -> bytes:
        env = self._env.get(ENV_NEW) or self._env.get(ENV)
        value = env.encode() if env else self._ask(what, True)
        if len(value) < 8:
            raise KeyPassphraseError("a key's passphrase must have at least 8 characters",
                                     hint="private keys are kept encrypted at rest: choose a longer passphrase")
        return value


def from_env(environ=None) -> Passphrase:
    """Passphrases from the environment only (no prompt): for scripts and tests."""
    return Passphrase(None, environ=environ)
