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
#                             per boot (bysans.hal.rtcmem)
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
