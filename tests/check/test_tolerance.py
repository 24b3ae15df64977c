import math

import pytest

from resdiag.check.tolerance import Tolerance, parse_tolerance


@pytest.mark.parametrize("text, kind, value", [
    ("rel:5%", "rel", 0.05), ("rel:0.05", "rel", 0.05), (" REL : 50% ", "rel", 0.5),
    ("abs:0.05", "abs", 0.05), ("abs:0", "abs", 0.0), ("rel:0%", "rel", 0.0),
])
def test_parse(text, kind, value):
    t = parse_tolerance(text)
    assert t.kind == kind and t.value == pytest.approx(value)


@pytest.mark.parametrize("text", ["5%", "rel", "rel:", "rel:x", "abs:5%", "abs:-1", "rel:nan", "mean:5%",
                                  "rel:inf"])
def test_parse_refuses(text):
    with pytest.raises(ValueError, match="rel:PERCENT%"):
        parse_tolerance(text)


def test_allows():
    rel, ab = Tolerance("rel", 0.1), Tolerance("abs", 0.05)
    assert rel.allows(2.0, 2.2) and not rel.allows(2.0, 2.21) and rel.allows(-2.0, -1.8)
    assert ab.allows(0.5, 0.55) and not ab.allows(0.5, 0.56)
    assert rel.allows(math.nan, math.nan) and not rel.allows(1.0, math.nan) and not rel.allows(math.nan, 1.0)
    assert ab.allows(math.inf, math.inf) and not ab.allows(math.inf, 1e300) and not ab.allows(1.0, -math.inf)
    assert Tolerance("abs", 0.0).allows(0.3, 0.3)
    assert rel.text() == "rel:10%" and ab.text() == "abs:0.05" and rel.describe() == "10%"
