"""A seeded uniform random sample of mutants, per package, from ``mutmut results --all true`` on
stdin. Usage: ``python sample.py diagnosis=1 metrics=0.3 probes=0.3 [--seed 0]`` prints the sampled
names, one a line (fraction 1 = every mutant of the package). Sampling mutants uniformly estimates
the full score (Wong & Mathur 1995, "Reducing the cost of mutation testing: an empirical study").
"""

from __future__ import annotations

import random
import re
import sys

NAME = r"(resdiag\.[\w.ǁ]+__mutmut_\d+)"


def main(argv: list[str]) -> int:
    seed = 0
    if "--seed" in argv:
        i = argv.index("--seed")
        seed = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    fractions = {k: float(v) for k, v in (a.split("=") for a in argv)}
    by_package: dict[str, list[str]] = {}
    for line in sys.stdin:
        m = re.match(rf"\s*{NAME}: ", line)
        if m:
            by_package.setdefault(m.group(1).split(".")[1], []).append(m.group(1))
    rng = random.Random(seed)
    for package, names in sorted(by_package.items()):
        names = sorted(names)
        rng.shuffle(names)  # a prefix of one seeded shuffle: a larger fraction extends a smaller one
        k = round(fractions.get(package, 0.0) * len(names))
        for name in sorted(names[:k]):
            print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
