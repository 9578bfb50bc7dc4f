# The node application: main.py only calls main(). One wake: read the config, arm the watchdog, choose the
# sink (bysans.sink: the LoRaWAN MAC on an enrolled board with a radio, else the capture), run the node's
# cycle (bysans.node), join if this board has no LoRaWAN session yet and the wake is not from deep sleep,
# log one line on the serial port and deep-sleep until the next reading.
# When an OTA check-in is due, the cycle's boot ends in a soft reset instead, and the check-in runs in a
# boot of its own (bysans.otapoll: one more line), then deep-sleeps until the reading the cycle planned:
# the cycle's modules, and the names they interned, are then not in the heap beside the OTA client's
# (an ESP32 keeps interned names until a reset). /checkin.due carries the plan across the soft reset.
# A FUOTA session's rebuilt block is installed the same way, in a boot of its own (bysans.fuota.autoinstall:
# FUOTA_INSTALL carries the plan and the tries), before a check-in that is due too.
# A board without /config/node.json (or an enrolled /config/device.json) is not configured yet: it says so
# and stays at the REPL.
import gc
import sys

from bysans.version import VERSION
from bysans.hal import board

CHECKIN_PATH = "/checkin.due"  # "<epoch s of the next reading> <watchdog ms>": a check-in runs at the next boot
FUOTA_BLOCK = "/fuota/frag.bin"  # a FUOTA session's rebuilt block (bysans.fuota.frag's ROOT and OUT)
FUOTA_INSTALL = "/fuota.due"  # "<epoch s> <watchdog ms> <tries>": its install (bysans.fuota.autoinstall)


# The cycle's modules, forgotten once it is done and suspended: what ends the boot (the check-in's or the
# FUOTA install's plan in flash) then finds the heap the MAC and the node cut up free again
# (bysans.modules.drop). RTC memory needs no heap then: diag.boot read it into bysans.hal.rtcmem's buffer, which
# the diagnostics, the LoRaWAN store and the node's state share and write back whole.
_CYCLE_MODULES = ("bysans.lorawan", "bysans.radio", "bysans.sink", "bysans.node", "bysans.payload",
                  "bysans.settings", "bysans.config")


def _exists(path):
    import os

    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _install(b):
    # the FUOTA install's own boot (bysans.fuota.autoinstall), when FUOTA_INSTALL exists; False: not this boot
    if not _exists(FUOTA_INSTALL):
        return False
    from bysans.fuota import autoinstall

    return autoinstall.run(b, FUOTA_BLOCK, FUOTA_INSTALL, CHECKIN_PATH)


def _checkin(b):
    """The check-in's own boot: runs it when /checkin.due says so (removed first: a check-in that hangs or
    resets is not run again), then deep-sleeps until the reading the cycle planned. False: not this boot."""
    import os

    try:
        with open(CHECKIN_PATH) as f:
            plan = f.read().split()
        os.remove(CHECKIN_PATH)
    except OSError:
        return False
    try:
        wake_s, wdt_ms = int(plan[0]), int(plan[1])
    except (IndexError, ValueError):
        wake_s, wdt_ms = 0, 0
    from bysans import otapoll

    wdt = b.watchdog(max(wdt_ms, otapoll.WATCHDOG_MS))
    print("bysans", VERSION, otapoll.run(b, feed=wdt.feed))
    from bysans import diag

    diag.heap(gc.mem_free())
    diag.save(b)
    wdt.feed()
    b.deepsleep(max(wake_s - b.epoch_s(), 1) * 1000)  # a reading already due (or a lost plan): at once
    return True


def _update_report(sink):
    """Sends the update report still owed after a FUOTA install (bysans.update_report); its module is loaded
    only while one is pending (OTA_REPORT exists), and dropped after."""
    import os

    from bysans.device_spec import OTA_REPORT

    try:
        os.stat(OTA_REPORT)
    except OSError:
        return
    from bysans import update_report
    from bysans.modules import drop

    try:
        update_report.send_due(sink)
    except OSError as e:  # flash full: tried again at the next wake
        print("bysans update report:", e)
    update_report = None
    drop("bysans.update_report")
    drop("bysans.ota.")


def main():
    b = board()
    cause = b.reset_cause()
    from bysans import diag  # reset cause, boots, watchdog resets, heap, exceptions (docs/formats/diagnostics.md)

    diag.boot(b, cause)
    from bysans.modules import drop

    drop("bysans.ota.")  # main.py's slot logic is done with
    if _install(b) or _checkin(b):
        return
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
        except OSError as e:  # lorawan.json there but not readable now (e.g. ENOMEM): kept, sent next wake
            print("bysans", VERSION, "on", b.name, "- cannot read the LoRaWAN credentials (%s): readings kept" % e)
        if hasattr(sink, "fuota_start"):
            sink.fuota_start()  # FUOTA work first, while the heap is whole (kept downlinks, a class C session)
        node = Node(b, cfg, sink, feed=wdt.feed, ota=bool(cfg.ota_every_s) and otapoll.configured())
        sleep_ms = node.wake()
        diag.heap(gc.mem_free())
        diag.send_due(b, sink, b.epoch_s())
        _update_report(sink)
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
    for name in _CYCLE_MODULES:
        drop(name)
    plan = "%d %d" % (b.epoch_s() + (sleep_ms + 999) // 1000, cfg.watchdog_ms)
    boot = False
    if _exists(FUOTA_BLOCK) or _exists(FUOTA_INSTALL):  # a rebuilt FUOTA block: installed in a boot of its own
        from bysans.fuota import autoinstall

        boot = autoinstall.plan(plan, FUOTA_BLOCK, FUOTA_INSTALL)
        autoinstall = None
    if ota_due:
        try:
            with open(CHECKIN_PATH, "w") as f:
                f.write(plan)
            boot = True
        except OSError as e:  # flash full: no check-in this time, the cycle is saved all the same
            sys.print_exception(e)
    if boot:
        diag.planned(b)  # the install's or check-in's boot is the app's own start, not a reset (saves the record)
        wdt.feed()
        b.soft_reset()  # the install's or check-in's boot (above) sleeps until the next reading
    diag.save(b)
    wdt.feed()
    b.deepsleep(sleep_ms)
