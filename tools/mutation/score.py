"""Mutation score per package from ``mutmut results --all true`` (read on stdin), less the mutants
that tools/mutation/equivalent.md argues are equivalent. Usage (in the scratch copy, see run.sh):

    mutmut results --all true | python tools/mutation/score.py [--only SAMPLE_FILE]

killed = killed or timeout (mutmut's own count); everything else that is not equivalent (survived,
no tests, suspicious, not checked) counts against the score.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

EQUIVALENT = Path(__file__).with_name("equivalent.md")
NAME = r"(resdiag\.[\w.ǁ]+__mutmut_\d+)"


def equivalent_names(text: str) -> set[str]:
    return set(re.findall(rf"`{NAME}`", text))


def main(argv: list[str]) -> int:
    equivalent = equivalent_names(EQUIVALENT.read_text())
    only = set(Path(argv[1]).read_text().split()) if argv[:1] == ["--only"] else None
    counts: dict[str, Counter] = {}
    seen = set()
    for line in sys.stdin:
        m = re.match(rf"\s*{NAME}: (.+)$", line)
        if not m:
            continue
        name, status = m.group(1), m.group(2).strip()
        if only is not None and name not in only:
            continue
        seen.add(name)
        package = ".".join(name.split(".")[:2])
        c = counts.setdefault(package, Counter())
        c["total"] += 1
        if name in equivalent:
            c["equivalent"] += 1
        elif status in ("killed", "timeout"):
            c["killed"] += 1
        else:
            c[status] += 1
    stale = equivalent - seen
    print(f"{'package':<20} {'killed':>7} {'non-equiv':>9} {'score':>7}  {'equivalent':>10}  other")
    total = Counter()
    for package, c in sorted(counts.items()):
        total.update(c)
        row(package, c)
    row("all three", total)
    if stale and only is None:
        print(f"\n{len(stale)} names in equivalent.md are not mutants of this run: {sorted(stale)}")
    return 0


def row(label: str, c: Counter) -> None:
    base = c["total"] - c["equivalent"]
    other = {k: v for k, v in c.items() if k not in ("total", "equivalent", "killed")}
    score = 100 * c["killed"] / base if base else float("nan")
    print(f"{label:<20} {c['killed']:>7} {base:>9} {score:>6.1f}%  {c['equivalent']:>10}  {dict(other)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
