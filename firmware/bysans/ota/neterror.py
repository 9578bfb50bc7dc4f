# Why an OTA check-in or download failed on the network side (raised by bysans.ota.http). A module of its
# own so that the client can catch it without loading the HTTP code: a FUOTA install has no network.


class NetError(Exception):
    """reason: UNREACHABLE | TIMEOUT | HTTP_ERROR | TRUNCATED | GARBAGE | TOO_LONG"""

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self):
        return self.reason + (": " + self.detail if self.detail else "")
