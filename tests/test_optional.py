"""The optional-dependency guard names the pip extra to install."""

import pytest

from pragmatiq._optional import MissingExtraError, available, require


def test_require_present_module_returns_it():
    assert require("json").dumps({}) == "{}"


def test_missing_module_names_the_extra(monkeypatch):
    import pragmatiq._optional as opt

    monkeypatch.setitem(opt._EXTRAS, "no_such_module_xyz", ("gpu", "a test capability"))
    with pytest.raises(MissingExtraError, match=r'pip install "pragmatiq\[gpu\]"'):
        require("no_such_module_xyz")
    assert not available("no_such_module_xyz")
