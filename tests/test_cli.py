"""The CLI: JSON on stdout, clear errors, console scripts installed."""

import json
import shutil
import subprocess
import sys

from click.testing import CliRunner

import pragmatiq
from pragmatiq.cli import cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert pragmatiq.__version__ in result.output


def test_info_is_json_with_versions_device_extras_and_backends():
    result = CliRunner().invoke(cli, ["info"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["pragmatiq"] == pragmatiq.__version__
    assert "torch" in info["versions"] and "pyarrow" in info["versions"]
    assert info["device"]["cuda"] in (True, False)
    assert info["extras"]["onnxruntime"] in (True, False)
    assert isinstance(info["attention_backends"], dict) and info["attention_backends"]


def test_console_scripts_are_installed():
    exe = shutil.which("pragmatiq", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the pragmatiq console script is not installed next to the interpreter"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert pragmatiq.__version__ in out.stdout


def test_validate_missing_directory_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
