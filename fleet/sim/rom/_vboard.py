# The virtual board's native module, as `esp32` and `machine` are an ESP32's: MicroPython code that the
# boot ROM (vboot.py) loads before the board's own filesystem is mounted. It talks to the supervisor over
# a socket for everything that is hardware (hwbus.py on the host has the protocol).
import os
import socket
import time
import json
import struct

_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
# The unix port's connect() takes a raw struct sockaddr_un: family, then the path, NUL-terminated.
_sock.connect(struct.pack("H", socket.AF_UNIX) + os.getenv("BYSANS_HW").encode() + b"\0")
_sock.write(b"hello\n")
_hello = json.loads(_sock.readline())

reset_cause = _hello["reset_cause"]  # power_on | hard | soft | watchdog | deepsleep
speed = _hello["speed"]
board = _hello["board"]  # the board definition (boards/<name>.json)
app = _hello.get("app", "factory")  # the app partition the bootloader started (esp32.Partition.RUNNING)
wlan_gate = _hello.get("wlan_gate", False)  # sockets need an associated WLAN (fleet/sim/wlan.py)
_boot_sim_ms = _hello["sim_ms"]
_boot_ticks = time.ticks_ms()


def call(request):
    """Sends one request line; returns the answer's payload, or raises OSError(errno) on `err`."""
    _sock.write(request + "\n")
    line = _sock.readline()
    if line.startswith(b"ok"):
        return line[3:].strip()
    if line.startswith(b"err"):
        raise OSError(int(line.split()[1]))
    raise OSError(5)  # EIO: the supervisor went away


def call_hex(request, data):
    """call(request + " " + hex of data) without the whole line in the heap at once: the hex goes out 64
    bytes of data at a time, so passing RTC memory costs about what an ESP32's RTC().memory() does."""
    import binascii

    _sock.write(request + " ")
    mv = memoryview(data)
    for i in range(0, len(mv), 64):
        _sock.write(binascii.hexlify(mv[i:i + 64]))
    return call("")


def send(request):
    """A request with no answer (sleep, reset): the supervisor ends this interpreter."""
    _sock.write(request + "\n")
    while True:
        time.sleep(1)


def elapsed_ms():
    """Simulated milliseconds since this boot."""
    return time.ticks_diff(time.ticks_ms(), _boot_ticks) * speed


def epoch_ms():
    return _boot_sim_ms + elapsed_ms()

