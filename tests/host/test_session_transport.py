"""The serial session's help for mpremote stays in the session: mpremote's modules are not patched, board
answers are parsed one thread at a time (CPython gh-106905), and a board that does not answer prints
nothing."""

import ast
import threading

import mpremote.transport
import mpremote.transport_serial

from provisioning import session


def test_mpremote_modules_are_left_as_they_are():
    assert mpremote.transport.ast is ast and mpremote.transport_serial.ast is ast
    assert "print" not in vars(mpremote.transport_serial)


class _Answers(session._Transport):
    """The session's transport with exec answering from a list instead of a serial line."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []

    def exec(self, command, data_consumer=None):
        self.sent.append(command)
        return self.answers.pop(0)


def test_eval_parses_the_boards_answer():
    t = _Answers(b"(1, 'a', b'\\x00')\r\n", b"raw text\r\n")
    assert t.eval("x") == (1, "a", b"\x00")
    assert t.sent == ["print(repr(x))"]
    assert t.eval("y", parse=False) == b"raw text"


def test_parses_wait_for_each_other():
    t = _Answers(b"[1, 2]\r\n")
    done = []
    with session._AST_LOCK:
        th = threading.Thread(target=lambda: done.append(t.eval("x")))
        th.start()
        th.join(0.3)
        assert not done, "a parse ran while another thread held the parse lock"
    th.join(5)
    assert done == [[1, 2]]
