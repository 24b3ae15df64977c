"""``resdiag check`` end to end, on the issue's acceptance checks (tiny models: < 1 s each)."""

import json
import os
import xml.etree.ElementTree as ET

import pytest

from tests.check.tiny import MODEL, RUN, TINY, TWO_MODELS


def test_healthy_residual_model_passes(cli, config):
    code, out, err = cli("check", "--config", config())
    assert code == 0, err
    assert "all 7 gates passed" in out and "FAIL" not in out


def test_shortcuts_removed_fails_and_names_the_gate(cli, config):
    code, out, _ = cli("check", "--config", config("plain = true"))
    assert code == 1
    assert "res.min_boundary_ratio" in out


def test_ten_times_the_init_fails(cli, config):
    code, out, _ = cli("check", "--config", config("init_gain = 10.0"), "--format", "json")
    assert code == 1
    failed = {g["id"] for g in json.loads(out)["gates"] if not g["passed"]}
    assert {"res.max_boundary_ratio", "res.verdict.grad-flow"} <= failed


def test_unknown_key_exits_2_and_names_it(cli, config, tmp_path):
    code, out, err = cli("check", "--config", config("foo = 1"), "--junitxml", tmp_path / "j.xml")
    assert code == 2 and out == ""
    assert err == f"resdiag: error: {tmp_path / 'resdiag.toml'}: models.res.foo: unknown key\n"
    assert not (tmp_path / "j.xml").exists()


def test_update_baseline_then_compare_then_perturb(cli, config, tmp_path):
    base = tmp_path / "baseline.json"
    code, _, err = cli("check", "-c", config(), "--baseline", base, "--update-baseline")
    assert code == 0 and f"wrote baseline {base}" in err
    stored = json.loads(base.read_text())
    assert stored["schema"] == "resdiag.baseline" and stored["schema_version"] == 1
    assert stored["torch_version"] and stored["resdiag_version"]
    assert stored["models"]["res"]["fingerprint"]["parameters"] > 0

    code, out, err = cli("check", "-c", config(), "--baseline", base, "--format", "json")
    assert code == 0, out
    gates = json.loads(out)["gates"]
    assert sum(g["kind"] == "baseline" for g in gates) == 8 and err == ""

    # A 0.5 shortcut scale keeps every absolute gate green but moves the ratio 3 -> 0.08.
    code, out, err = cli("check", "-c", config('shortcut = "scale:0.5"'), "--baseline", base,
                         "--format", "json")
    assert code == 1
    failed = [g for g in json.loads(out)["gates"] if not g["passed"]]
    assert {g["kind"] for g in failed} == {"baseline"}
    assert "res.baseline.boundary_ratio" in {g["id"] for g in failed}
    assert "warning: model 'res' differs from its baseline: config.shortcut.f_scale" not in err
    assert "warning: model 'res' differs from its baseline: config.shortcut" in err


def test_baseline_from_the_config(cli, config, tmp_path):
    path = config(text=RUN + '[baseline]\nfile = "b.json"\n' + MODEL)
    assert cli("check", "-c", path, "--update-baseline")[0] == 0
    assert (tmp_path / "b.json").is_file()
    code, out, _ = cli("check", "-c", path)
    assert code == 0 and "baseline.boundary_ratio" in out


def test_missing_baseline_is_a_usage_error(cli, config, tmp_path):
    code, _, err = cli("check", "-c", config(), "--baseline", tmp_path / "none.json")
    assert code == 2 and "baseline file not found" in err and "none.json" in err


def test_junit_xml_has_one_test_case_per_gate(cli, config, tmp_path):
    xml = tmp_path / "report.xml"
    code, out, _ = cli("check", "-c", config("plain = true"), "--junitxml", xml, "--format", "json")
    assert code == 1
    gates = json.loads(out)["gates"]
    root = ET.parse(xml).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(gates) == int(root.get("tests"))
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        (f"resdiag.{g['model']}", g["name"]) for g in gates]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [g["name"] for g in gates if not g["passed"]]
    assert root.get("failures") == str(len(failed)) == "1"


def test_github_format_annotates_failures_and_writes_the_summary(cli, config, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    path = config("plain = true")
    code, out, _ = cli("check", "-c", path, "--format", "github")
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("::error ")]
    assert errors == [f"::error file={str(path).replace(':', '%3A')},title=resdiag check%3A "
                      "res.min_boundary_ratio::boundary_ratio = 0.005763 < 0.05"]
    text = summary.read_text()
    assert text.startswith("earlier step\n### resdiag check: ❌ 1 of 7 gates failed")
    assert "| res | min_boundary_ratio | 0.005763 | >= 0.05 | **FAIL** |" in text


def test_same_seed_gives_byte_identical_json(cli, config):
    path = config(text=TWO_MODELS)
    first = cli("check", "-c", path, "--format", "json")
    second = cli("check", "-c", path, "--format", "json")
    assert first == second and first[1].startswith("{")
    other = config(text="seed = 1\n" + TWO_MODELS, name="seed1.toml")
    assert cli("check", "-c", other, "--format", "json")[1] != first[1]


def test_user_models_by_module_and_callable(cli, config):
    text = ("batches = 2\nbatch_size = 8\nrank_batch_size = 16\n"
            "[[models]]\nname = 'res'\nmodel = 'tests.check.factories:residual'\ninput_shape = [3, 4, 4]\n"
            "[[models]]\nname = 'plain'\nmodel = 'tests.check.factories:plain'\ninput_shape = [3, 4, 4]\n"
            "num_classes = 5\n")
    code, out, _ = cli("check", "-c", config(text=text), "--format", "json")
    assert code == 1
    d = json.loads(out)
    failed = {g["id"] for g in d["gates"] if not g["passed"]}
    assert failed and all(i.startswith("plain.") for i in failed)
    assert d["models"][0]["fingerprint"]["config"]["model"] == "tests.check.factories:residual"
    assert d["models"][0]["fingerprint"]["config"]["num_classes"] == 5


@pytest.mark.parametrize("spec, message", [
    ("tests.check.factories:nothing", "has no attribute"),
    ("tests.check.factories:NOT_A_MODULE", "not a callable"),
    ("tests.check.no_such_module:f", "cannot import"),
])
def test_bad_user_model_is_a_usage_error_naming_the_model(cli, config, spec, message):
    path = config(text=f"[[models]]\nname = 'u'\nmodel = '{spec}'\ninput_shape = [3, 4, 4]\n")
    code, _, err = cli("check", "-c", path)
    assert code == 2 and message in err and f"{path}: models.u:" in err and err.count("\n") == 1


def test_pyproject_is_found_from_a_subfolder(cli, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.resdiag]\n" + _pyproject())
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    code, out, _ = cli("check", "--format", "json")
    assert code == 0 and json.loads(out)["models"][0]["name"] == "res"
    (tmp_path / "pyproject.toml").write_text("[tool.resdiag]\nbogus = 1\n" + _pyproject())
    code, _, err = cli("check")
    assert code == 2 and ": tool.resdiag.bogus: unknown key" in err


def _pyproject() -> str:
    return RUN + MODEL.replace("[[models]]", "[[tool.resdiag.models]]")


def test_threads_and_deterministic_are_set_for_the_run_and_restored(cli, config, monkeypatch):
    import torch

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    path = config(text="threads = 2\ndeterministic = true\n" + TINY)
    code, out, _ = cli("check", "-c", path, "--format", "json")
    assert code == 0 and json.loads(out)["threads"] == 2
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_update_baseline_writes_even_when_a_limit_fails(cli, config, tmp_path):
    code, _, err = cli("check", "-c", config("plain = true"), "--baseline", tmp_path / "b.json",
                       "--update-baseline")
    assert code == 1 and (tmp_path / "b.json").is_file() and "wrote baseline" in err


def test_bad_format_is_a_usage_error(cli, config):
    code, out, err = cli("check", "-c", config(), "--format", "xml")
    assert code == 2 and out == ""
    assert err == "resdiag: error: unknown --format 'xml': use human, json, github\n"
