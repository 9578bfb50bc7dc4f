"""`fleet sim start --interpreter PATH`: a virtual board on another MicroPython binary, the 32-bit one at the
TTGO LoRa32's heap (docs/boards.md), and refusals that say what to do."""

import json
import os

from e2e_tools import run_fleet
from fleet import boards
from lab.serialconsole import Console


def test_a_32bit_board_runs_at_its_heap_and_has_aes(mp32):
    r = run_fleet("sim", "start", "--name", "t32", "--board", "virtual_ttgo", "--interpreter", mp32, "--erase",
                  "--json")
    assert r.returncode == 0, r.stderr
    try:
        [st] = json.loads(r.stdout)
        assert st["interpreter"] == mp32 and st["heap"] == boards.load("ttgo_lora32_v21")["heap"]
        c = Console(st["port"])
        try:
            c.raw_repl()
            out = c.exec("import sys, gc, cryptolib\ngc.collect()\n"
                         "print(sys.maxsize, gc.mem_alloc() + gc.mem_free())\n"
                         "print(cryptolib.aes(bytes(range(16)), 1).encrypt(bytes.fromhex("
                         "'00112233445566778899aabbccddeeff')).hex())")
        finally:
            c.close()
        size, heap = out.split()[:2]
        assert int(size) == 2**31 - 1  # 32-bit objects, as on an ESP32
        assert int(heap) <= 112 * 1024
        assert out.split()[2] == "69c4e0d86a7b0430d8cdb78070b4c55a"  # FIPS-197 C.1
    finally:
        run_fleet("sim", "stop", "t32")


def test_an_interpreter_that_cannot_run_the_boards_code_is_refused(mp32):
    r = run_fleet("sim", "start", "--name", "t32x", "--board", "virtual", "--interpreter", mp32)
    assert r.returncode == 2, r.stderr
    assert "runs x86 code" in r.stderr and "built for x64" in r.stderr and "--board virtual_ttgo" in r.stderr


def test_a_32bit_board_without_a_32bit_interpreter_says_how_to_get_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "BYSANS_MICROPYTHON32"}
    env["XDG_CACHE_HOME"] = str(tmp_path)  # nothing built there
    import subprocess
    import sys
    from pathlib import Path

    r = subprocess.run([str(Path(sys.executable).parent / "fleet"), "sim", "start", "--board", "virtual_ttgo"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "32-bit MicroPython" in r.stderr and "build-micropython32" in r.stderr and "--interpreter" in r.stderr
