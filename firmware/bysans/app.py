# The node application: main.py only calls main(). One wake: read the config, arm the watchdog, choose the
# sink (bysans.sink: the LoRaWAN MAC on an enrolled board with a radio, else the capture), run the node's
# cycle (bysans.node), join if this board has no LoRaWAN session yet and the wake is not from deep sleep,
# log one line on the serial port, then, when due, the OTA check-in (bysans.otapoll: one more line), and
# deep-sleep until the next reading.
# A board without /config/node.json (or an enrolled /config/device.json) is not configured yet: it says so
# and stays at the REPL.
import gc
import sys

from bysans.version import VERSION
from bysans.hal import board

# what stays loaded for the OTA client; the cycle's modules are dropped before it runs (heap: docs/node.md)
_KEEP = ("bysans.hal", "bysans.hal.virtual", "bysans.hal.esp32", "bysans.version", "bysans.otapoll",
         "bysans.modules", "bysans.app", "bysans.diag", "bysans.diag_spec")


def main():
    b = board()
    cause = b.reset_cause()
    from bysans import diag  # reset cause, boots, watchdog resets, heap, exceptions (docs/formats/diagnostics.md)

    diag.boot(b, cause)
    from bysans.modules import drop

    drop("bysans.ota.")  # boot.py's slot logic is done with
    from bysans import config
    from bysans.settings import Settings

    st = Settings()  # the settings downlinks set (flash); those taken at the last wake apply now
    try:
        st.apply_pending()
    except OSError as e:  # flash full: they apply at a wake that can write them
        print("bysans settings:", e)
    try:
        cfg = config.load(b.definition.get("sensors", ()), overlay=st.values)
    except config.ConfigError as e:
        key = (" " + e.args[0]) if e.args[0] else ""
        print("bysans", VERSION, "on", b.name, "reset:", cause, "- bad", config.CONFIG_PATH + key + ":", e.args[1])
        return
    if cfg is None:
        print("bysans", VERSION, "on", b.name, "reset:", cause, "- not configured: write", config.CONFIG_PATH,
              "(docs/node.md)")
        return
    wdt = b.watchdog(cfg.watchdog_ms)
    gc.collect()  # the cycle's modules load next, best into one free stretch of heap
    from bysans import otapoll
    from bysans import sink as sinks
    from bysans.node import Node

    sleep_ms = cfg.interval_s * 1000
    ota_due = False
    sink = None
    try:
        try:
            sink = sinks.choose(b, feed=wdt.feed)
        except sinks.SinkConfigError as e:
            print("bysans", VERSION, "on", b.name, "- bad", e.args[0] + ": nothing is sent")
        if hasattr(sink, "fuota_start"):
            sink.fuota_start()  # FUOTA work first, while the heap is whole (kept downlinks, a class C session)
        node = Node(b, cfg, sink, feed=wdt.feed, ota=bool(cfg.ota_every_s) and otapoll.configured())
        sleep_ms = node.wake()
        diag.heap(gc.mem_free())
        diag.send_due(b, sink, b.epoch_s())
        line = node.summary()
        ota_due = node.ota_due
        node = None
        if cause != "deepsleep" and hasattr(sink, "join"):
            sink.join()  # the first wake shows at once whether the network answers
        st.after_wake(sink)  # the downlinks' commands; their acknowledgement uplink
        if hasattr(sink, "fuota_run"):
            sleep_ms = sink.fuota_run(sleep_ms)  # wake before the next class C session
        said = sink.summary() if hasattr(sink, "summary") else ""
        said = "; ".join(x for x in (said, st.summary()) if x)
        print("bysans", VERSION, cfg.kind, "reset:", cause, line + ("; " + said if said else ""))
    except Exception as e:  # noqa: BLE001 - a bug in a cycle costs that cycle, never the node
        sys.print_exception(e)
        print("bysans", VERSION, "exception #%08x" % diag.exception(e))
    try:
        if hasattr(sink, "suspend"):
            sink.suspend(sleep_ms)
    except Exception as e:  # noqa: BLE001
        sys.print_exception(e)
    sink = node = Node = sinks = config = st = None
    if ota_due:
        drop("bysans.", _KEEP)  # the cycle's modules (node, sampler, drivers, LoRaWAN): their heap is free
        wdt = b.watchdog(max(cfg.watchdog_ms, otapoll.WATCHDOG_MS))
        print("bysans", VERSION, otapoll.run(b, feed=wdt.feed))
        diag.heap(gc.mem_free())
    diag.save(b)
    wdt.feed()
    b.deepsleep(sleep_ms)
