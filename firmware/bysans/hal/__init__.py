# The board object: every piece of hardware the app uses comes from here, never from `machine` directly.
# On an ESP32 it wraps machine/esp32 (hal/esp32.py); on a virtual board it wraps the simulator's native
# module `_vboard` (hal/virtual.py). Both offer the same methods:
#   i2c(bus_id)            -> bus with machine.I2C's readfrom_mem_into/writeto_mem/readfrom_into/writeto/scan
#                             (addrsize=16 for chips with 16-bit register addresses)
#   uart(uart_id)          -> machine.UART's write/any/read/readinto, pins and baud from the board file's
#                             "uart" entry; timeout 0 (a read returns what has arrived, or None)
#   spi(bus_id)            -> machine.SPI's write/read/readinto/write_readinto, mode 0, pins from the board file's
#                             "spi" entry; chip select is a pin() the driver drives itself
#   adc(pin)               -> machine.ADC's read_uv()/read_u16() at 11 dB attenuation (0..about 3.1 V)
#   pin(pin, mode="in"|"out", pull=None|"up"|"down", value=None) -> machine.Pin's value([v])/on()/off()
#   rtc_memory([data])     -> bytes kept across deep sleep, soft and watchdog resets (2048 at most)
#                             a new bytes of all of it at each read, as RTC().memory(): the app reads it once
#                             per boot (bysans.hal.rtcmem, below)
#   watchdog(timeout_ms)   -> object with feed()
#   deepsleep(ms)          -> does not return; the board wakes with reset_cause() == "deepsleep"
#   reset(), soft_reset()
#   reset_cause()          -> "power_on" | "hard" | "soft" | "watchdog" | "deepsleep"
#   ticks_ms(), ticks_diff(a, b), sleep_ms(ms), epoch_s()   (the virtual clock may run faster than real)
#                          sleep_ms(ms) lasts at least ms, as time.sleep_ms: drivers bound their waits on it
#   unique_id()            -> bytes (the chip's MAC on an ESP32)
#   definition             -> the board file (boards/<name>.json) as a dict
RTC_MEMORY_BYTES = 2048
RESET_CAUSES = ("power_on", "hard", "soft", "watchdog", "deepsleep")

_board = None


def board():
    global _board
    if _board is None:
        try:
            import _vboard
        except ImportError:
            _vboard = None
        if _vboard is not None:
            from bysans.hal.virtual import VirtualBoard

            _board = VirtualBoard(_vboard)
        else:
            from bysans.hal.esp32 import Esp32Board

            _board = Esp32Board()
    return _board


# rtcmem: RTC memory as this boot sees it: read once (diag.boot, the boot's first step) into one buffer allocated
# then, while the heap is whole, and shared by the three modules that keep state there: the LoRaWAN store
# (bysans.lorawan.store, bytes [0, 480)), the diagnostics (bysans.diag, [480, 512)) and the node's state
# (bysans.rtcstate, [512, 2048)). Each changes its own bytes in the buffer and writes the buffer back whole
# (save()), as an ESP32's machine.RTC().memory(data) takes it (the store makes its record in place there and
# writes flash from it); no read of RTC memory, which returns a new
# bytes object of all of it, happens again in this boot. So the MAC's frame-counter writes and the node's
# save need no 1.4 KB block in a heap the MAC and the sampling have cut up.
# Only these modules write RTC memory, and a boot starts with a new heap (deep sleep, reset), so the buffer
# always holds what RTC memory holds once loaded. The bytes past used() are zeros.
# A class used as a namespace (`from bysans.hal import rtcmem`), not a module of its own: every file of a
# release takes at least one 4 KiB littlefs block per slot, and this one is always loaded with the HAL.
def _zero(buf, a, b):
    for i in range(a, b):
        buf[i] = 0


class rtcmem:  # noqa: N801 - read as a module: rtcmem.load(board), rtcmem.save(...)
    _buf = None    # bytearray(SIZE), allocated at the first load
    _n = 0         # RTC memory's length: RTC().memory() gives back as many bytes as were last written
    _board = None  # the board loaded from (None: not loaded in this boot, or forgotten)

    @staticmethod
    def load(board):
        """Reads RTC memory into the buffer (the boot's one read: diag.boot); returns the buffer."""
        fresh = rtcmem._buf is None
        if fresh:
            rtcmem._buf = bytearray(RTC_MEMORY_BYTES)
        buf = rtcmem._buf
        raw = board.rtc_memory()
        n = min(len(raw), RTC_MEMORY_BYTES)
        memoryview(buf)[:n] = memoryview(raw)[:n]
        raw = None
        if not fresh:  # read again (a test's new boot, a failed flash write): what lay past the old length too
            _zero(buf, n, RTC_MEMORY_BYTES)
        rtcmem._n = n
        rtcmem._board = board
        return buf

    @staticmethod
    def image(board):
        """The buffer of SIZE bytes holding RTC memory (its first used() bytes), read now if not yet."""
        if rtcmem._board is not board or rtcmem._buf is None:
            return rtcmem.load(board)
        return rtcmem._buf

    @staticmethod
    def used():
        """How many bytes RTC memory holds (0 after a power-on)."""
        return rtcmem._n

    @staticmethod
    def save(board, end, tail=False):
        """Writes the buffer back to RTC memory whole, as max(used(), end) bytes; tail=True: as end bytes (the
        owner of the last region cuts what lies past its end). The bytes between used() and end are zeros."""
        n = rtcmem._n
        if tail and end < n:
            _zero(rtcmem._buf, end, n)
            n = end
        elif end > n:
            n = end
        rtcmem._n = n
        board.rtc_memory(memoryview(rtcmem._buf)[:n])

    @staticmethod
    def forget():
        """The buffer may differ from RTC memory (a put whose flash write failed; a test's fake board that
        sleeps or loses power): the next image() reads RTC memory again."""
        rtcmem._board = None
