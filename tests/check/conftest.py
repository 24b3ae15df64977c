import pytest

from resdiag.cli.app import main
from tests.check.tiny import TINY


@pytest.fixture
def config(tmp_path):
    """Write ``TINY`` plus ``extra`` lines (added to the model's table) to resdiag.toml; its path."""
    def write(extra: str = "", text: str | None = None, name: str = "resdiag.toml"):
        path = tmp_path / name
        path.write_text((TINY if text is None else text) + extra + "\n")
        return path
    return write


@pytest.fixture
def cli(capsys):
    """Run ``resdiag ARGS``: (exit code, stdout, stderr)."""
    def run(*args):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exc.value.code, out, err
    return run
