"""The CLI: JSON on stdout, clear errors, console scripts installed."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
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
    exe = shutil.which("pragmatiq", path=str(Path(sys.executable).parent))
    assert exe, "the pragmatiq console script is not installed next to the interpreter"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert pragmatiq.__version__ in out.stdout


def test_validate_missing_directory_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2


def test_pretrain_trains_layers_the_config_and_prints_the_run(tiny_tok, tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text("token_budget: 4096\nwarmup_steps: 1\neval_every: 1000\ncheckpoint_every: 1000\n")
    result = CliRunner().invoke(cli, ["pretrain", str(tiny_tok), "--name", "r", "--model-size", "nano",
                                      "--config", str(own), "--max-steps", "2", "--runs-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run"])
    assert (run / "model.safetensors").exists()
    config = yaml.safe_load((run / "config.yaml").read_text())
    # the file's keys, the flag, and nano's recipe for everything else
    got = (config["token_budget"], config["max_steps"], config["lr"], config["user_loss_weight"])
    assert got == (4096, 2, 0.003, 1.0)


def test_pretrain_and_probe_errors_are_one_line(tmp_path, tiny_tok, tiny_run):
    result = CliRunner().invoke(cli, ["pretrain", str(tmp_path / "nope"), "--name", "r", "--model-size", "nano"])
    assert result.exit_code == 2
    assert "manifest.json not found" in result.output and "Traceback" not in result.output
    raw = Path(json.loads((tiny_tok / "manifest.json").read_text())["data_dir"])  # the book, not its tokens
    result = CliRunner().invoke(cli, ["pretrain", str(raw), "--name", "r", "--model-size", "nano"])
    assert result.exit_code == 2
    assert f"{raw} is a raw data directory (events.parquet), not a token directory: tokenize it first" in result.output
    result = CliRunner().invoke(cli, ["pretrain", str(tiny_tok), "--name", "r", "--max-steps", "0"])
    assert result.exit_code == 2 and "error: pretraining config: max_steps must be >= 1, got 0" in result.output
    bad = tmp_path / "default_12m.parquet"
    pq.write_table(pa.table({"user_id": ["u"], "label": [1], "eval_ts": ["2024-01-01"]}), bad)
    result = CliRunner().invoke(cli, ["probe", str(tiny_tok), "--run", str(tiny_run), "--label", str(bad)])
    assert result.exit_code == 2, result.output
    assert f"error: {bad}: column eval_ts is string" in result.output


def test_synth_refuses_to_replace_a_dataset_it_did_not_write(tmp_path):
    own = tmp_path / "data"
    own.mkdir()
    pq.write_table(pa.table({"user_id": ["u1"]}), own / "events.parquet")  # the bank's own book
    args = ["synth", "generate", "--out", str(own), "--n-users", "20"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "already holds a dataset that pragmatiq synth did not write (events.parquet)" in result.output
    assert pq.read_table(own / "events.parquet").num_rows == 1  # untouched
    # --force replaces it; a synthetic bank is then replaced without it
    assert CliRunner().invoke(cli, args + ["--force"]).exit_code == 0
    result = CliRunner().invoke(cli, args + ["--seed", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((own / "manifest.json").read_text())["config"]["seed"] == 1


def test_out_of_range_options_are_refused_before_any_work(tmp_path):
    for args, option in [(["serve", "--repo", str(tmp_path), "--http-port", "99999"], "--http-port"),
                         (["tokenize", str(tmp_path), "--out", str(tmp_path / "t"), "--n-workers", "0"], "--n-workers"),
                         (["bench", "parity", "--run", str(tmp_path), "--repeats", "0"], "--repeats"),
                         (["quickstart", "--out", str(tmp_path / "q"), "--n-users", "0"], "--n-users")]:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, (args, result.output)
    # a bad pretraining setting fails the quickstart before it synthesizes anything
    result = CliRunner().invoke(cli, ["quickstart", "--out", str(tmp_path / "q"), "--max-steps", "-1"])
    assert result.exit_code == 2 and "max_steps must be >= 1, got -1" in result.output, result.output
    assert not (tmp_path / "q").exists()


def test_bad_yaml_is_one_line(tmp_path, tiny_tok):
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_steps: [1\n")
    for args in (["synth", "generate", "--out", str(tmp_path / "d"), "--config", str(bad)],
                 ["pretrain", str(tiny_tok), "--name", "r", "--config", str(bad), "--runs-root", str(tmp_path)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and f"error: {bad}: not valid YAML at line 2" in result.output, result.output


def test_a_bad_synth_start_names_the_setting(tmp_path):
    for start, message in [('"not a date"', "`start` must be a date like 2024-01-01, got 'not a date'"),
                           ("2024-03-15", "`start` must be the first day of a month, got 2024-03-15")]:
        config = tmp_path / "synth.yaml"
        config.write_text(f"start: {start}\n")
        result = CliRunner().invoke(cli, ["synth", "generate", "--out", str(tmp_path / "d"), "--config", str(config)])
        assert result.exit_code == 2 and message in result.output, result.output


def test_warnings_are_one_line(tmp_path, tiny_book, tiny_tok, tiny_run):
    # a probe whose label table names users the book does not have: the CLI says so in one
    # `warning:` line, not with the file, line and source of the code that warned
    table = pq.read_table(tiny_book / "labels" / "churn_6m.parquet")
    ids = table.column("user_id").to_pylist()
    label = tmp_path / "churn_6m.parquet"
    pq.write_table(table.set_column(0, "user_id", pa.array(["ghost"] + ids[1:])), label)
    result = subprocess.run([sys.executable, "-m", "pragmatiq", "probe", str(tiny_tok), "--run", str(tiny_run),
                             "--label", str(label)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if "not in" in line]
    assert lines and lines[0].startswith("warning: 1 of ") and "'ghost'" in lines[0], result.stderr[-2000:]
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr
