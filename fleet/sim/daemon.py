"""The process behind one virtual board: `python -m fleet.sim.daemon --dir STATE_DIR --name vb1 ...`.

`fleet sim start` spawns it in its own session; it writes board.json in its directory once the serial port
exists, serves until `stop` (or SIGTERM), and takes its interpreter with it when it ends.
"""

import argparse
import asyncio
import fcntl
import json
import logging
import os
import signal

from .supervisor import Supervisor


def main(argv=None):
    ap = argparse.ArgumentParser(prog="fleet.sim.daemon")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--board-json", required=True, help="the board definition, as JSON")
    ap.add_argument("--baud", type=int, default=0)
    ap.add_argument("--speed", type=int, default=1)
    ap.add_argument("--heap")
    ap.add_argument("--interpreter", help="the MicroPython binary to run the board on")
    ap.add_argument("--forwarder", help="HOST:PORT of a Semtech packet forwarder's server (UDP)")
    ap.add_argument("--scenario", help="a scenario file driving the simulated world")
    args = ap.parse_args(argv)
    forwarder = None
    if args.forwarder:
        host, _, port = args.forwarder.rpartition(":")
        forwarder = (host or "127.0.0.1", int(port))

    os.chdir(args.dir)  # sockets are bound by short relative names here
    lock = os.open(".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one name, one board; held for our whole life
    except OSError:
        print(f"virtual board {args.name} is already running", flush=True)
        raise SystemExit(75)
    logging.basicConfig(filename="supervisor.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    sup = Supervisor(name=args.name, state_dir=os.path.abspath("."), board=json.loads(args.board_json),
                     baud=args.baud or None, speed=args.speed, heap=args.heap, forwarder=forwarder,
                     scenario=args.scenario, interpreter=args.interpreter)

    def ready(info):
        tmp = "board.json.tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, "board.json")
        try:
            if os.path.lexists("tty"):
                os.unlink("tty")
            os.symlink(info["port"], "tty")
        except OSError:
            pass

    async def serve():
        loop = asyncio.get_running_loop()
        try:  # no helper threads around fork(): the interpreter is spawned with a preexec_fn
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(loop)
            asyncio.get_event_loop_policy().set_child_watcher(watcher)
        except (AttributeError, NotImplementedError, OSError):
            pass
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, lambda: sup._stopped and sup._stopped.set())
        await sup.run(ready_cb=ready)

    try:
        asyncio.run(serve())
    finally:
        for f in ("board.json", "tty"):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
        logging.info("%s stopped", args.name)


if __name__ == "__main__":
    main()
