"""Config paths resolve from a checkout and from the installed package; YAML reads as YAML 1.2 does."""

import pytest

from pragmatiq.configs import CONFIG_DIR, config_path, read_yaml


def test_repo_relative_path_falls_back_to_bundled_copy(tmp_path, monkeypatch):
    (CONFIG_DIR / "data").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)  # no configs/ here: must find the bundled file
    bundled = sorted((CONFIG_DIR / "data").glob("*.yaml"))
    if not bundled:
        pytest.skip("no bundled data configs yet")
    rel = f"configs/data/{bundled[0].name}"
    assert config_path(rel) == bundled[0]


def test_missing_config_error_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="looked relative to"):
        config_path("configs/data/does-not-exist.yaml")


def test_yaml_exponent_floats_are_numbers(tmp_path):
    # YAML 1.2 reads 1e-3 as a float; PyYAML's 1.1 rules would hand the config a string
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nwd: -2E+2\nsteps: 300\nname: 1e\nbeta: 0.95\n")
    assert read_yaml(path) == {"lr": 0.001, "wd": -200.0, "steps": 300, "name": "1e", "beta": 0.95}


def test_invalid_yaml_names_the_file_line_and_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("max_steps: 10\nlr: [1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML at line 3, column 1: expected ',' or ']'"):
        read_yaml(path)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="not a text"):
        read_yaml(path)
