"""JUnit XML for ``resdiag check --junitxml``: one test case per gate, a failure element for each
gate that failed. Written with ``xml.etree`` and no time attributes, so it is as deterministic as the run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from resdiag.check.result import CheckResult, fmt


def junit_xml(result: CheckResult) -> bytes:
    failures = str(len(result.failed))
    counts = {"tests": str(len(result.gates)), "failures": failures, "errors": "0", "skipped": "0"}
    root = ET.Element("testsuites", {"name": "resdiag check", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": "resdiag check", **counts})
    props = ET.SubElement(suite, "properties")
    for name, value in (("resdiag_version", result.resdiag_version), ("torch_version", result.torch_version),
                        ("seed", str(result.seed)), ("device", result.device),
                        ("threads", str(result.threads))):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for g in result.gates:
        case = ET.SubElement(suite, "testcase", {"classname": f"resdiag.{g.model}", "name": g.name})
        if not g.passed:
            failure = ET.SubElement(case, "failure", {"message": g.message, "type": g.kind})
            failure.text = f"{g.id}: value {fmt(g.value)}, limit {g.limit}\n{g.message}\n"
    if result.warnings:
        ET.SubElement(suite, "system-err").text = "".join(f"warning: {w}\n" for w in result.warnings)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
