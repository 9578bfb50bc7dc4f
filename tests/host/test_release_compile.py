"""mpy-cross's results are kept by content: an unchanged module is not compiled again, and whatever comes from
the cache is byte for byte what mpy-cross makes (a changed source, a damaged entry or another mpy-cross
program never reuses an entry)."""

import stat
import subprocess

import pytest

from fleet.errors import ReleaseError
from fleet.release import compile
from fleet.resources import mpy_cross_binary, mpy_cross_path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv(compile.CACHE_ENV, str(d))
    return d


def _plain(src, name, arch="x64"):
    """What mpy-cross itself makes of `src`, with no cache involved."""
    out = src.with_suffix(".plain.mpy")
    subprocess.run([mpy_cross_path(), f"-march={arch}", "-s", name, "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def _modules(tmp_path, n=3):
    srcs = []
    for i in range(n):
        f = tmp_path / "src" / f"m{i}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"X = {i}\ndef f(a):\n    return a * {i + 2}\n")
        srcs.append(f)
    return srcs


def _jobs(srcs, out):
    return [(s, f"bysans/{s.name}", out / (s.stem + ".mpy")) for s in srcs]


def test_unchanged_modules_come_from_the_cache_as_mpy_cross_makes_them(tmp_path, cache):
    srcs = _modules(tmp_path)
    assert compile.compile_all(_jobs(srcs, tmp_path / "a"), "x64") == 0
    assert compile.compile_all(_jobs(srcs, tmp_path / "b"), "x64") == 3
    for s in srcs:
        assert (tmp_path / "b" / (s.stem + ".mpy")).read_bytes() == _plain(s, f"bysans/{s.name}")


def test_a_changed_module_or_another_arch_is_compiled_again(tmp_path, cache):
    srcs = _modules(tmp_path)
    compile.compile_all(_jobs(srcs, tmp_path / "a"), "x64")
    srcs[1].write_text("X = 'changed'\n")
    assert compile.compile_all(_jobs(srcs, tmp_path / "b"), "x64") == 2
    assert (tmp_path / "b" / "m1.mpy").read_bytes() == _plain(srcs[1], "bysans/m1.py")
    assert compile.compile_all(_jobs(srcs, tmp_path / "c"), "xtensawin") == 0
    assert (tmp_path / "c" / "m0.mpy").read_bytes() == _plain(srcs[0], "bysans/m0.py", "xtensawin")


def test_a_damaged_entry_is_not_used(tmp_path, cache):
    srcs = _modules(tmp_path, 1)
    compile.compile_all(_jobs(srcs, tmp_path / "a"), "x64")
    [entry] = [p for p in cache.rglob("*") if p.is_file()]
    raw = bytearray(entry.read_bytes())
    raw[len(raw) // 3] ^= 0x40
    entry.write_bytes(bytes(raw))
    assert compile.compile_all(_jobs(srcs, tmp_path / "b"), "x64") == 0
    assert (tmp_path / "b" / "m0.mpy").read_bytes() == _plain(srcs[0], "bysans/m0.py")


def test_another_mpy_cross_program_does_not_reuse_entries(tmp_path, cache, monkeypatch):
    srcs = _modules(tmp_path, 2)
    compile.compile_all(_jobs(srcs, tmp_path / "a"), "x64")
    other = tmp_path / "bin" / "mpy-cross"
    other.parent.mkdir()
    other.write_text(f'#!/bin/sh\n# another build of the program: other bytes, same output\nexec {mpy_cross_binary()} "$@"\n')
    other.chmod(other.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(compile, "mpy_cross_binary", lambda: str(other))
    assert compile.compile_all(_jobs(srcs, tmp_path / "b"), "x64") == 0


def test_a_module_that_does_not_compile_is_named_and_not_cached(tmp_path, cache):
    srcs = _modules(tmp_path, 2)
    bad = tmp_path / "src" / "broken.py"
    bad.write_text("def f(:\n")
    with pytest.raises(ReleaseError, match="bysans/broken.py"):
        compile.compile_all(_jobs([*srcs, bad], tmp_path / "a"), "x64")
    assert compile.compile_all(_jobs(srcs, tmp_path / "b"), "x64") == 2
    assert len([p for p in cache.rglob("*") if p.is_file()]) == 2


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv(compile.CACHE_ENV, "off")
    srcs = _modules(tmp_path, 1)
    compile.compile_all(_jobs(srcs, tmp_path / "a"), "x64")
    assert compile.compile_all(_jobs(srcs, tmp_path / "b"), "x64") == 0
