# Named errors of the LoRaWAN MAC. Messages never carry key material or frame contents.


class LoRaWANError(Exception):
    pass


class KeyError_(LoRaWANError):
    # a key, EUI or address of the wrong length (named with a trailing _ so it never hides builtins)
    pass


class FrameError(LoRaWANError):
    # a frame that cannot be built or parsed: too long for the data rate, too short, wrong type
    pass


class MicError(FrameError):
    pass


class NotJoined(LoRaWANError):
    pass


class JoinFailed(LoRaWANError):
    # no valid join-accept in either window
    pass


class DutyCycleBlocked(LoRaWANError):
    # no enabled channel may transmit now; wait_ms says how long until one may
    def __init__(self, wait_ms):
        super().__init__("duty cycle: no channel free for %d ms" % wait_ms)
        self.wait_ms = wait_ms


class ChannelError(LoRaWANError):
    # a frequency outside the EU868 sub-bands, a data rate the plan does not have
    pass


class CounterExhausted(LoRaWANError):
    # FCntUp reached 2**32 or DevNonce 2**16: a new join (or new keys) is the only way on
    pass
