"""The in-band abort of the binary channel (provisioning/wire.py): a host that is interrupted sends a block
holding ABORT, which the board's reader takes as the end. It must never occur in escaped data, and the abort
block must be exactly as long as the block the board reads next."""

import os
import random

import pytest

from provisioning import wire


def test_abort_never_occurs_in_escaped_data():
    every_pair = bytes(b for i in range(256) for b in (i, 0)) + bytes(range(256)) * 2
    rng = random.Random(11)
    samples = [every_pair, bytes([wire.ESC, 0]) * 50, os.urandom(4096),
               bytes(rng.choice([0, wire.ESC, 0x40, 3, 0x43]) for _ in range(4096))]
    for data in samples:
        enc = wire.escape(data)
        assert wire.ABORT not in enc
        assert wire.unescape(enc) == data


@pytest.mark.parametrize("remaining,length", [(0, 0), (1, 1), (2, 2), (100, 100), (wire.BLOCK, wire.BLOCK),
                                              (10 * wire.BLOCK + 3, wire.BLOCK)])
def test_abort_block_fills_the_block_the_board_reads_next(remaining, length):
    block = wire.abort_block(remaining)
    assert len(block) == length
    if length >= len(wire.ABORT):
        assert block.startswith(wire.ABORT)

