"""Identical figures give byte-identical SVG, PDF and PNG files, in separate processes."""

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from pathlib import Path
from resdiag.report.plot import _figure, save
plt = _figure()
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [1e-3, 1, 1e3]); ax.set_yscale("log")
ax.fill_between([1, 2, 3], [1, 1, 1], [2, 2, 2], hatch="//")
save(fig, Path(sys.argv[1]))
"""


@pytest.mark.parametrize("ext", ["svg", "pdf", "png"])
def test_same_figure_same_bytes(tmp_path, ext):
    files = [tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"]
    for f in files:  # separate interpreters: fresh random ids and a later clock each time
        subprocess.run([sys.executable, "-c", SCRIPT, str(f)], check=True)
    assert files[0].read_bytes() == files[1].read_bytes()
