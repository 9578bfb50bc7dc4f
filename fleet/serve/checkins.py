"""One writer thread for device check-ins: requests queue their check-in and wait for its answer; the
writer takes everything that queued meanwhile and records it in one transaction
(OtaStore.checkin_batch), so a burst of check-ins costs one commit per batch instead of one lock wait and
commit per device, and no request holds a thread while it waits.

Each check-in is recorded and answered in the order it arrived, exactly as one at a time would be: the
answer (which release to take) is computed inside the batch, after the check-ins before it. A batch that
fails as a whole (the registry went away, a bug) is tried again one check-in at a time, so one bad
check-in fails alone.
"""

import logging
import queue
import threading
from concurrent.futures import Future

log = logging.getLogger("fleet.serve")

MAX_BATCH = 256  # check-ins in one transaction


class CheckinWriter:
    def __init__(self, store, *, repo_dir=None, poll_s: int, accept_keyless: bool = False):
        self.store = store
        self._kw = {"repo_dir": repo_dir, "poll_s": poll_s, "accept_keyless": accept_keyless}
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="fleet-checkin-writer", daemon=True)
        self._thread.start()

    def submit(self, body: bytes, mac: str | None) -> Future:
        """Queues one check-in; the future holds its answer, or the error it is answered with."""
        fut = Future()
        self._queue.put((body, mac, fut))
        return fut

    def close(self, timeout: float = 30):
        """Records what is queued, then stops the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch):
        try:
            results = self.store.checkin_batch([(body, mac) for body, mac, _ in batch], **self._kw)
        except Exception as e:
            if len(batch) > 1:
                log.warning("a batch of %d check-ins failed (%s); recording them one at a time", len(batch),
                            type(e).__name__)
                for one in batch:
                    self._write([one])
            else:
                batch[0][2].set_exception(e)
            return
        for (_, _, fut), r in zip(batch, results):
            if isinstance(r, Exception):
                fut.set_exception(r)
            else:
                fut.set_result(r)
