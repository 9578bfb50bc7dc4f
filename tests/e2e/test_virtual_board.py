"""A virtual board behaves as a USB board does, for the real tools (pyserial, mpremote)."""

import hashlib
import os
import re
import time

import pytest

from fleet import boards

from e2e_tools import pid_alive, run_mpremote


def test_mpremote_exec_cp_ls_cat_rm_run_softreset(vboard, tmp_path):
    port = vboard.port
    assert run_mpremote(port, "exec", "print(6 * 7)").stdout.strip() == "42"

    blob = os.urandom(64 * 1024)
    (tmp_path / "blob.bin").write_bytes(blob)
    (tmp_path / "hello.py").write_text("print('hello from', __name__)\n")
    run_mpremote(port, "cp", str(tmp_path / "blob.bin"), ":blob.bin", "+", "cp", str(tmp_path / "hello.py"), ":hello.py")
    listing = run_mpremote(port, "ls").stdout
    assert "65536 blob.bin" in listing and "hello.py" in listing
    out = run_mpremote(port, "exec", "import hashlib, binascii; h = hashlib.sha256(); "
                       "f = open('blob.bin', 'rb'); h.update(f.read()); print(binascii.hexlify(h.digest()).decode())")
    assert out.stdout.strip() == hashlib.sha256(blob).hexdigest()
    run_mpremote(port, "cp", ":blob.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == blob
    assert run_mpremote(port, "cat", "hello.py").stdout == "print('hello from', __name__)\n"
    assert run_mpremote(port, "run", str(tmp_path / "hello.py")).stdout.strip() == "hello from __main__"
    run_mpremote(port, "rm", ":blob.bin")
    assert "blob.bin" not in run_mpremote(port, "ls").stdout
    boots = vboard.status()["boots"].get("soft", 0)
    run_mpremote(port, "soft-reset")
    assert vboard.status()["boots"]["soft"] > boots


def test_filesystem_is_the_boards_own_and_survives_resets(console, vboard):
    console.raw_repl()
    out = console.exec("import os\ntry:\n open('/etc/passwd')\nexcept OSError as e:\n print('refused', e.errno)\n"
                       "print(os.listdir('/'))")
    assert out.splitlines() == ["refused 2", "[]"]
    console.exec("with open('keep.txt', 'w') as f:\n    f.write('kept')")
    vboard.reset()
    vboard.wait_booted()
    console.raw_repl()
    assert console.exec("print(open('keep.txt').read())").strip() == "kept"
    vboard.powercut()
    vboard.wait_booted()
    console.raw_repl()
    assert console.exec("print(open('keep.txt').read())").strip() == "kept"


def test_soft_reset_prints_like_a_board_and_keeps_rtc_memory(console, vboard):
    console.raw_repl()
    console.exec("import _vboard; _vboard.call('rtc.w 0102')")
    # Ctrl-D at the raw REPL: "OK", then the board's soft reboot banner, then the raw REPL again.
    console.write(b"\x04")
    assert console.read_until(b"raw REPL; CTRL-B to exit\r\n>").endswith(
        b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>")
    out = console.exec("import _vboard\nprint(_vboard.reset_cause, _vboard.call('rtc.r'))")
    assert out.strip() == "soft b'0102'"
    # machine.soft_reset() from running code does the same
    console.write(b"import machine; machine.soft_reset()\x04")
    console.read_until(b"MPY: soft reboot\r\n")
    console.read_until(b"raw REPL; CTRL-B to exit\r\n>")
    assert vboard.status()["boots"]["soft"] == 2


def test_boot_py_runs_after_every_soft_reset_main_py_only_outside_the_raw_repl(vboard, tmp_path):
    # ports/esp32/main.c: after a soft reset in the raw REPL (mpremote's, at the start of each command) a board
    # runs boot.py, which may print, and not main.py; its globals stay for the REPL. A real boot runs both.
    (tmp_path / "boot.py").write_text("print('boot.py ran')\nf = open('boots', 'a')\nf.write('b')\nf.close()\n"
                                      "marker = 'from boot.py'\n")
    (tmp_path / "main.py").write_text("f = open('mains', 'a')\nf.write('m')\nf.close()\n")
    port = vboard.port
    run_mpremote(port, "cp", str(tmp_path / "boot.py"), ":boot.py", "+", "cp", str(tmp_path / "main.py"), ":main.py")
    for _ in range(3):
        run_mpremote(port, "exec", "pass")
    read = ("import os, _vboard\nprint(open('boots').read(), 'mains' in os.listdir('/'), marker, "
            "_vboard.reset_cause)")
    assert run_mpremote(port, "exec", read).stdout.split() == ["bbbb", "False", "from", "boot.py", "soft"]
    from lab.serialconsole import Console

    c = Console(port)
    try:
        c.raw_repl()
        c.write(b"\x04")  # Ctrl-D at the raw REPL: what boot.py prints comes between the two banners
        out = c.read_until(b"raw REPL; CTRL-B to exit\r\n>")  # (the unix port's print ends a line with \n only)
        assert re.search(rb"OK\r\nMPY: soft reboot\r\nboot\.py ran\r?\nraw REPL; CTRL-B to exit\r\n>$", out), out
        c.write(b"\x02")  # the friendly REPL: its Ctrl-D boots as a board does when it starts, main.py too
        c.read_until(b">>> ")
        c.write(b"\x04")
        c.read_until(b"boot.py ran")
        vboard.wait_prompt()
        c.raw_repl()
        assert c.exec("print(open('boots').read(), open('mains').read())").split() == ["bbbbbb", "m"]
    finally:
        c.close()
    assert [e["raw"] for e in vboard.events() if e["event"] == "boot" and e["cause"] == "soft"] == \
        [True] * 6 + [False]  # mpremote: cp, exec x 4; the Ctrl-D in the raw REPL; in the friendly one


def test_main_py_runs_at_boot_and_ctrl_c_interrupts_it(console, vboard):
    console.raw_repl()
    console.exec("with open('main.py', 'w') as f:\n    f.write('import time\\nn = 0\\nwhile True:\\n    n += 1\\n"
                 "    print(\"tick\", n)\\n    time.sleep_ms(20)\\n')")
    vboard.reset()
    console.read_until(b"tick 3")
    console.raw_repl()  # Ctrl-C stops the app, as it does on a board
    assert console.exec("print(n > 2)").strip() == "True"


def test_deep_sleep_wakes_with_rtc_memory_and_cause(make_board):
    from lab.serialconsole import Console

    board = make_board(speed=600)
    c = Console(board.port)
    try:
        c.raw_repl()
        c.write(b"import _vboard\n_vboard.call('rtc.w cafe')\n_vboard.send('sleep 60000')\x04")  # 1 min
        c.read_until(b"rst:0x5 (DEEPSLEEP_RESET)")
        board.wait_booted()
        c.raw_repl()
        assert c.exec("import _vboard\nprint(_vboard.reset_cause, _vboard.call('rtc.r'))").strip() == \
            "deepsleep b'cafe'"
        events = [e["event"] for e in board.events()]
        assert events.count("deep_sleep") == 1
    finally:
        c.close()


def test_watchdog_resets_a_hung_app_but_not_a_fed_one(console, vboard):
    console.raw_repl()
    console.write(b"import _vboard, time\n_vboard.call('wdt.arm 1000')\n"
                  b"for i in range(30):\n    _vboard.call('wdt.feed')\n    time.sleep_ms(100)\nprint('fed')\n"
                  b"while True:\n    time.sleep_ms(100)\n\x04")
    out = console.read_until(b"TG0WDT_SYS_RESET", timeout=15)
    assert b"fed" in out, "a fed watchdog must not fire"
    vboard.wait_booted()
    assert vboard.status()["reset_cause"] == "watchdog"


def test_hard_reset_and_power_cut_lose_rtc_memory(console, vboard):
    for action, cause in ((vboard.reset, "hard"), (vboard.powercut, "power_on")):
        console.raw_repl()
        console.exec("import _vboard; _vboard.call('rtc.w 77')")
        action()
        vboard.wait_booted()
        console.raw_repl()
        assert console.exec("import _vboard; print(_vboard.reset_cause, _vboard.call('rtc.r'))").strip() == \
            f"{cause} b''"


def test_baud_limit_paces_the_line_and_counts_bytes(make_board):
    from lab.serialconsole import Console

    board = make_board(baud=115200)
    c = Console(board.port)
    try:
        c.raw_repl()
        board.counters(reset=True)
        t0 = time.monotonic()
        out = c.exec("print('x' * 20000)", timeout=30)
        elapsed = time.monotonic() - t0
        assert len(out) == 20001
        counters = board.counters()
        assert counters["board_to_host"] >= 20001
        # a UART at 115200 baud moves at most 11520 bytes a second (8N1): the line cannot be faster
        assert elapsed >= counters["board_to_host"] * 10 / 115200 * 0.95
    finally:
        c.close()


def test_clock_speed_up(make_board):
    from lab.serialconsole import Console

    board = make_board(speed=3600)
    c = Console(board.port)
    try:
        c.raw_repl()
        out = c.exec("import _vboard, time\nt = _vboard.elapsed_ms()\ntime.sleep_ms(200)\n"
                     "print(_vboard.elapsed_ms() - t)")
        assert int(out) >= 200 * 3600  # 200 ms of real time is at least 12 minutes of board time
    finally:
        c.close()


def test_i2c_bus_answers_with_the_chips_of_the_board_file(console):
    on_i2c0 = sorted(s["address"] for s in boards.load("virtual")["sensors"] if s.get("bus") == "i2c0")
    assert 118 in on_i2c0  # the BME280
    console.raw_repl()
    out = console.exec(
        "import _vboard\n"
        "print(_vboard.call('i2c.scan 0'))\n"
        "_vboard.call('i2c.w 0 118 d0')\n"
        "print(_vboard.call('i2c.r 0 118 1'))\n"
        "try:\n    _vboard.call('i2c.w 0 3 d0')\nexcept OSError as e:\n    print('nack', e.errno)\n")
    scan, chip_id, nack, errno = out.split("\n")[0], *out.split()[-3:]
    assert scan == repr(" ".join(map(str, on_i2c0)).encode())
    assert (chip_id, nack, errno) == ("b'60'", "nack", "19")


def test_no_interpreter_outlives_a_killed_supervisor(make_board):
    board = make_board()
    interp = board.status()["interpreter_pid"]
    os.kill(board.pid, 9)
    deadline = time.monotonic() + 5
    while pid_alive(interp) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(interp)


@pytest.mark.parametrize("n", [3])
def test_several_boards_are_independent(make_board, n):
    from lab.serialconsole import Console

    boards = [make_board() for _ in range(n)]
    consoles = [Console(b.port) for b in boards]
    try:
        for i, c in enumerate(consoles):
            c.raw_repl()
            c.exec(f"with open('me.txt', 'w') as f:\n    f.write('{i}')")
        for i, c in enumerate(consoles):
            assert c.exec("print(open('me.txt').read())").strip() == str(i)
    finally:
        for c in consoles:
            c.close()


def test_paste_mode_and_raw_paste_as_on_a_board(console):
    # friendly REPL paste mode (Ctrl-E ... Ctrl-D)
    console.write(b"\r\x03\x03")
    console.read_until(b">>> ")
    console.write(b"\x05")
    console.read_until(b"paste mode; Ctrl-C to cancel, Ctrl-D to finish")
    console.write(b"def f():\r    return 'pasted'\r\rprint(f())\r\x04")
    console.read_until(b"pasted")
    # raw-paste: the board answers R\x01 and a window size, then takes the code in flow-controlled windows
    console.raw_repl()
    console.write(b"\x05A\x01")
    head = console.read_until(b"R\x01")
    assert head.endswith(b"R\x01")
    while len(console.buf) < 3:
        console.buf += console.ser.read(3)
    window, console.buf = int.from_bytes(console.buf[:2], "little"), console.buf[2:]
    assert window >= 32
    assert console.read_until(b"\x01") == b"\x01"  # flow control: ready for the first window
    console.write(b"print('raw', 'paste')\x04")
    console.read_until(b"\x04")  # end of data acknowledged
    assert b"raw paste" in console.read_until(b"\x04>")


def test_wait_prompt_waits_for_main_py_to_finish(vboard, console):
    # main.py that takes a while, then returns: the board is at its prompt only afterwards, and an
    # interrupt sent then finds a raw REPL at once.
    console.raw_repl()
    console.exec("f = open('main.py', 'w')\nf.write('import time\\ntime.sleep_ms(1500)\\nprint(\"main done\")\\n')\n"
                 "f.close()")
    console.close()
    vboard.reset()
    vboard.wait_booted()
    assert not vboard.status()["at_prompt"]  # main.py is still sleeping
    st = vboard.wait_prompt()
    assert st["at_prompt"]
    from provisioning.session import Session

    with Session(vboard.port, soft_reset=False) as s:
        assert s.exec("print(1 + 1)").strip() == "2"
