"""The sampler's memory layout is declared in firmware/bysans/sampler.py and repeated in bysans/waste.py
(viper folds only a module's own const() names): the two blocks must agree, and the viper code must
reach the words through those names, not bare numbers."""

import ast
import re

from fleet.resources import firmware_dir

SAMPLER = firmware_dir() / "bysans" / "sampler.py"
WASTE = firmware_dir() / "bysans" / "waste.py"
LAYOUT = ("STRIDE", "CHANNELS", "HDR", "HEAD", "COUNT", "DEPTH", "N", "MIN", "MAX", "SUM", "LAST", "FAULTS",
          "WORDS")


def consts(path) -> dict[str, int]:
    found = {}
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "const"):
            found[node.targets[0].id] = ast.literal_eval(node.value.args[0])
    return found


def viper_sources(path) -> dict[str, str]:
    src = path.read_text()
    return {f.name: ast.get_source_segment(src, f) for f in ast.parse(src).body
            if isinstance(f, ast.FunctionDef)
            and any(ast.unparse(d) == "micropython.viper" for d in f.decorator_list)}


def test_the_sampler_declares_the_whole_layout():
    s = consts(SAMPLER)
    assert set(LAYOUT) <= set(s)
    channel_words = [s[n] for n in ("HEAD", "COUNT", "DEPTH", "N", "MIN", "MAX", "SUM", "LAST", "FAULTS")]
    assert sorted(channel_words) == list(range(s["WORDS"]))  # state words are distinct, the ring follows
    assert sorted([s["STRIDE"], s["CHANNELS"]]) == list(range(s["HDR"]))


def test_waste_repeats_the_sampler_layout_exactly():
    s, w = consts(SAMPLER), consts(WASTE)
    repeated = {n: w["_" + n] for n in LAYOUT if "_" + n in w}
    assert repeated, "waste.py no longer repeats the layout: is its fused viper path gone?"
    assert repeated == {n: s[n] for n in repeated}
    # every layout name the fused path uses is declared in waste.py
    used = set(re.findall(r"\b_([A-Z]+)\b", "".join(viper_sources(WASTE).values())))
    assert used & set(LAYOUT) <= set(repeated)


def test_viper_code_names_its_offsets():
    for path in (SAMPLER, WASTE):
        for name, src in viper_sources(path).items():
            bare = re.findall(r"\bs\[\w+ \+ \d+", src)  # s[off + 4]: a layout word written as a number
            assert not bare, f"{path.name}:{name} indexes the layout with a bare number: {bare}"
            assert src.count("^ 0x8000") == 0, f"{path.name}:{name} pastes the old sign extension"


def test_the_sign_extension_idiom_is_exact():
    # (w ^ sb) - sb with sb = 1 << 31, on a 64-bit port's zero-extended load of an int32 word
    sb = 1 << 31
    for v in (0, 1, -1, 2**31 - 1, -2**31, 12345, -12345):
        assert ((v & 0xFFFFFFFF) ^ sb) - sb == v
