"""Config paths resolve from a checkout and from the installed package."""

import pytest

from pragmatiq.configs import CONFIG_DIR, config_path


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
