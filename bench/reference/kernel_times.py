"""The GPU time of each kernel in an Nsight Compute CSV (scripts/gpu-check.sh run's profile).

    python3 bench/reference/kernel_times.py ncu.csv

Reads `ncu --metrics gpu__time_duration.sum --csv --print-units base` output (one row per
kernel launch; lines before the CSV header, the profiled program's own output, are skipped),
sums each kernel's durations and prints them largest first: total ms, share of all kernel time,
launches and mean µs, then the totals.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict

UNITS = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0, "second": 1e3, "s": 1e3}


def main() -> None:
    lines = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        print(f"kernel_times: no CSV header in {sys.argv[1]}; its first lines:", *lines[:10], sep="\n")
        return
    ms: dict[str, float] = defaultdict(float)
    launches: dict[str, int] = defaultdict(int)
    for row in csv.DictReader(lines[start:]):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = row["Kernel Name"].split("(")[0][:90]
        ms[name] += float(row["Metric Value"].replace(",", "")) * UNITS.get(row.get("Metric Unit", "ns"), 1e-6)
        launches[name] += 1
    total = sum(ms.values())
    print(f"{'ms':>9} {'share':>6} {'launches':>8} {'mean us':>9}  kernel")
    for name, t in sorted(ms.items(), key=lambda kv: -kv[1])[:40]:
        print(f"{t:9.3f} {t / total:6.1%} {launches[name]:8d} {t / launches[name] * 1e3:9.1f}  {name}")
    print(f"{total:9.3f} {'100%':>6} {sum(launches.values()):8d}  all kernels ({len(ms)} distinct)")


if __name__ == "__main__":
    main()
