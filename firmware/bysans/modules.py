# Forgetting modules a wake no longer needs, so the heap their code and constants take is free again for
# what comes next (the LoRaWAN MAC after the sensors, the OTA client after the cycle). An ESP32 loads a
# .mpy module's bytecode into the heap (only frozen modules run from flash), so a module that is no
# longer referenced is worth dropping. A module dropped and imported again later is simply loaded again.
import gc
import sys


def drop(prefix, keep=()):
    """Forgets every loaded module whose name starts with `prefix` (except those in `keep`): removed from
    sys.modules and from its package's attributes, then a gc.collect(). Returns how many."""
    n = 0
    for name in list(sys.modules):
        if name.startswith(prefix) and name not in keep:
            del sys.modules[name]
            parent, _, child = name.rpartition(".")
            pkg = sys.modules.get(parent)
            if pkg is not None:
                try:
                    delattr(pkg, child)
                except AttributeError:
                    pass
            n += 1
    gc.collect()
    return n
