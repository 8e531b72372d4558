"""Turns `sparkv bench --json` outputs into the matrix tables of docs/benchmarks.md.

Usage: python3 bench/matrix_tables.py SCALE DIGITS RATES.json TRACE.json...
SCALE is 1 for seconds or 1000 for milliseconds, DIGITS the decimals shown. The rates file comes
first, then one file per trace. Prints one markdown table per context length, then one CHECK line
per row with the unrounded ratios that the targets are read from.
"""
import json
import sys

if len(sys.argv) < 4:
    sys.exit(__doc__)
scale = float(sys.argv[1])
digits = int(sys.argv[2])
files = sys.argv[3:]
strategies = ["local", "stream", "cachegen", "cake", "greedy", "sparkv", "sparkv-adaptive"]
rows = {}  # n_chunks -> list of (label, dict)
for f in files:
    d = json.load(open(f))
    name = d["scenario"]
    for p in d["points"]:
        if "rate_mbit" in p and "trace" not in name.lower() and p.get("rate_mbit", 0) > 0 and name.endswith("rates"):
            label = "%g Mbit/s" % p["rate_mbit"]
        else:
            label = name.split("-", 2)[2]
        s = {x["name"]: x for x in p["strategies"]}
        rows.setdefault(p["n_chunks"], []).append((label, p["hindsight_ttft_s"], s))
fmt = "%." + str(digits) + "f"
for n in sorted(rows):
    print("\n%d chunks\n" % n)
    print("| bandwidth | hindsight | " + " | ".join(strategies) + " | adaptive: best single / it | cake / it | energy vs local |")
    print("|---" * (len(strategies) + 5) + "|")
    checks = []
    for label, h, s in rows[n]:
        t = {k: s[k]["ttft_s"] for k in strategies}
        a = t["sparkv-adaptive"]
        best = min(t["local"], t["stream"])
        spread = max(t["local"], t["stream"]) / best
        cells = [fmt % (h * scale)] + [fmt % (t[k] * scale) for k in strategies]
        cells += ["%.2fx" % (best / a), "%.2fx" % (t["cake"] / a), "%.2f" % s["sparkv-adaptive"]["energy_vs_local"]]
        print("| " + label + " | " + " | ".join(cells) + " |")
        checks.append("%-22s single spread %.2f  adapt/best %.4f  cake/adapt %.4f  energy %.3f  stream/local %.3f  hind/adapt %.4f" % (
            label, spread, best / a, t["cake"] / a, s["sparkv-adaptive"]["energy_vs_local"], t["stream"] / t["local"], h / a))
    print()
    for c in checks: print("CHECK", n, c)
