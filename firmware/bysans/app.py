# The node application: main.py only calls main(). One wake: read the config, arm the watchdog, run the
# node's cycle (bysans.node), log one line on the serial port, deep-sleep until the next reading.
# A board without /config/node.json is not configured yet: it says so and stays at the REPL.
import gc
import sys

from bysans.version import VERSION
from bysans.hal import board


def main():
    b = board()
    cause = b.reset_cause()
    from bysans import config

    try:
        cfg = config.load(b.definition.get("sensors", ()))
    except config.ConfigError as e:
        key = (" " + e.args[0]) if e.args[0] else ""
        print("bysans", VERSION, "on", b.name, "reset:", cause, "- bad", config.CONFIG_PATH + key + ":", e.args[1])
        return
    if cfg is None:
        print("bysans", VERSION, "on", b.name, "reset:", cause, "- not configured: write", config.CONFIG_PATH,
              "(docs/node.md)")
        return
    wdt = b.watchdog(cfg.watchdog_ms)
    gc.collect()  # compiling the cycle from source needs most of a 128K heap
    from bysans.node import Node
    from bysans.uplink import default_sink

    sleep_ms = cfg.interval_s * 1000
    try:
        node = Node(b, cfg, default_sink(b), feed=wdt.feed)
        sleep_ms = node.wake()
        print("bysans", VERSION, cfg.kind, "reset:", cause, node.summary())
    except Exception as e:  # noqa: BLE001 - a bug in a cycle costs that cycle, never the node
        sys.print_exception(e)
    wdt.feed()
    b.deepsleep(sleep_ms)
