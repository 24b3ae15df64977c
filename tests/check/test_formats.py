"""The output formats, on hand-made results: JSON, JUnit XML, GitHub annotations, the rich table."""

import json
import math
import xml.etree.ElementTree as ET

from rich.console import Console

from resdiag.check.github import annotations, append_summary, markdown
from resdiag.check.human import print_check
from resdiag.check.junit import junit_xml
from tests.check.fake import gate, result

GATES = [gate(), gate(name="min_boundary_ratio", passed=False, message="boundary_ratio = inf is not finite"),
         gate(model="n", name="verdict.rank", passed=False, message="50% of x: a, b\nsecond line")]


def test_json_is_strict_and_counts():
    d = json.loads(result(GATES, ["w"]).to_json())
    assert d["schema"] == "resdiag.check" and d["status"] == "fail"
    assert d["counts"] == {"gates": 3, "passed": 1, "failed": 2}
    assert d["gates"][1]["value"] == "Infinity" and d["gates"][1]["id"] == "m.min_boundary_ratio"
    assert d["warnings"] == ["w"] and d["models"][0]["verdicts"]["grad-flow"]["status"] == "healthy"
    assert json.loads(result(GATES[:1]).to_json())["status"] == "pass"


def test_junit():
    root = ET.fromstring(junit_xml(result(GATES, ["careful"])))
    suite = root.find("testsuite")
    assert root.get("tests") == suite.get("tests") == "3" and suite.get("failures") == "2"
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("resdiag.m", "max_boundary_ratio"), ("resdiag.m", "min_boundary_ratio"),
        ("resdiag.n", "verdict.rank")]
    assert cases[0].find("failure") is None
    assert cases[2].find("failure").get("message") == "50% of x: a, b\nsecond line"
    assert suite.find("system-err").text == "warning: careful\n"
    assert {p.get("name"): p.get("value") for p in suite.find("properties")}["torch_version"] == "2.13.0"
    assert junit_xml(result(GATES)) == junit_xml(result(GATES))


def test_github_annotations_are_escaped():
    lines = annotations(result(GATES, ["a\nb"]), "cfg/res,diag.toml").splitlines()
    assert lines == [
        "::error file=cfg/res%2Cdiag.toml,title=resdiag check%3A m.min_boundary_ratio::"
        "boundary_ratio = inf is not finite",
        "::error file=cfg/res%2Cdiag.toml,title=resdiag check%3A n.verdict.rank::"
        "50%25 of x: a, b%0Asecond line",
        "::warning title=resdiag check::a%0Ab",
        "resdiag check: 1 of 3 gates passed, 2 failed",
    ]
    assert annotations(result(GATES[:1])) == "resdiag check: 1 of 1 gates passed\n"


def test_markdown_summary(tmp_path):
    text = markdown(result(GATES))
    assert text.startswith("### resdiag check: ❌ 2 of 3 gates failed\n\n| model | gate |")
    assert "| m | min_boundary_ratio | inf | <= 10 | **FAIL** |" in text
    path = tmp_path / "summary.md"
    append_summary(path, result(GATES[:1]))
    append_summary(path, result(GATES[:1]))
    assert path.read_text().count("✅ all 1 gates passed") == 2


def test_human_table():
    console = Console(record=True, width=120, color_system=None)
    print_check(console, result(GATES))
    text = console.export_text()
    assert "max_boundary_ratio" in text and "FAIL" in text and "2 of 3 gates failed" in text
    assert "n.verdict.rank: 50% of x" in text
    assert math.isinf(GATES[1].value)
