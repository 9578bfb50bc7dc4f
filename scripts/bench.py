#!/usr/bin/env python3
"""Benchmarks: one JSON line per result, {"bench": NAME, "value": X, "unit": U, "baseline": B, ...}.

Each module in scripts/benches/ lists its benchmarks in BENCHES, a list of (names, function): `names` are
the bench names the function reports, so `--only PREFIX` can skip what it does not need; the function
returns a list of result dicts. Baselines are measured in the same run.

usage: scripts/bench.py [--only PREFIX] [--list]
"""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def load_benches():
    found = []
    for path in sorted((HERE / "benches").glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"benches.{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        found += list(getattr(mod, "BENCHES", []))
    return found


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="run only the benchmarks whose name starts with PREFIX")
    ap.add_argument("--list", action="store_true", help="list the benchmark names")
    args = ap.parse_args(argv)
    failed = 0
    for names, fn in load_benches():
        if args.list:
            print("\n".join(names))
            continue
        if args.only and not any(n.startswith(args.only) for n in names):
            continue
        try:
            results = fn()
        except Exception as e:  # one broken benchmark must not hide the others
            failed += 1
            print(json.dumps({"bench": names[0], "error": f"{type(e).__name__}: {e}"}), flush=True)
            continue
        for r in results:
            if not args.only or r["bench"].startswith(args.only):
                print(json.dumps(r), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
