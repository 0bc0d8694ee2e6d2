"""`calibrate`: aggregates in, a generator config out whose book reproduces them."""

from __future__ import annotations

import json

import pytest
import yaml

from pragmatiq.configs import config_path
from pragmatiq.data.synth import calibrate, load_synth_config, synthesize
from pragmatiq.data.synth.calibrate import load_aggregates

EXAMPLE = "configs/data/aggregates.example.yaml"


def test_example_aggregates_load_cleanly(recwarn):
    agg = load_aggregates(EXAMPLE)
    assert not recwarn.list
    assert set(agg) >= {"persona_shares", "events_per_user_month", "fraud_rate", "default_rate",
                        "country_mix", "category_mix", "mean_ticket"}


def test_unknown_keys_warn():
    with pytest.warns(UserWarning, match="unknown aggregate keys.*avg_balance"):
        agg = load_aggregates({"fraud_rate": 0.01, "avg_balance": 1200})
    assert agg == {"fraud_rate": 0.01}


@pytest.mark.parametrize("bad, match", [
    ({"persona_shares": {"student": 0.5, "retiree": 0.3}}, "persona_shares.*sum to 0.8000"),
    ({"category_mix": {"groceries": 1.2, "travel": -0.2}}, "category_mix.*>= 0"),
    ({"fraud_rate": -0.01}, "fraud_rate.*rate in"),
    ({"default_rate": 1.5}, "default_rate"),
    ({"events_per_user_month": 0}, "events_per_user_month.*> 0"),
    ({"mean_ticket": {"groceries": -3}}, "mean_ticket.*positive"),
    ({"country_mix": {"XX": 1.0}}, "country_mix.*unknown names.*XX"),
])
def test_impossible_values_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        load_aggregates(bad)


def test_writes_a_config_generate_accepts(tmp_path):
    stats = {"fraud_rate": 0.01, "persona_shares": {
        "student": 0.2, "young_professional": 0.2, "family": 0.2, "affluent": 0.1,
        "retiree": 0.1, "gig_worker": 0.2}, "events_per_user_month": 50.0}
    out = tmp_path / "calibrated.yaml"
    cfg = calibrate(stats, out, progress=False, pilot_users=120, iterations=1)
    assert yaml.safe_load(out.read_text()) == cfg
    loaded = load_synth_config(out)
    assert loaded.fraud_rate == 0.01 and loaded.persona_shares["student"] == pytest.approx(0.2)


@pytest.mark.slow
def test_generated_book_lands_within_10pct_of_targets(tmp_path):
    """Calibrate on the example aggregates, generate 2,000 users with the result and compare
    the book's aggregates (manifest) with the targets. Shares of at least 2 % and every
    mean ticket must land within 10 %; the default rate, a 2,000-user binomial estimate, within
    three standard errors."""
    targets = load_aggregates(EXAMPLE)
    out = tmp_path / "calibrated.yaml"
    calibrate(EXAMPLE, out, progress=False)
    manifest = synthesize(out, tmp_path / "book", n_workers=2, progress=False)
    agg = manifest["aggregates"]
    misses = []
    for key in ("persona_shares", "country_mix", "category_mix", "mean_ticket"):
        for name, t in targets[key].items():
            if key != "mean_ticket" and t < 0.02:
                continue
            if abs(agg[key][name] - t) > 0.1 * t:
                misses.append(f"{key}.{name}: {agg[key][name]:.4f} vs {t}")
    for key in ("events_per_user_month", "fraud_rate"):
        if abs(agg[key] - targets[key]) > 0.1 * targets[key]:
            misses.append(f"{key}: {agg[key]:.4f} vs {targets[key]}")
    n = manifest["counts"]["labels"]["default_12m"]
    p = targets["default_rate"]
    assert abs(agg["default_rate"] - p) <= 3 * (p * (1 - p) / n) ** 0.5
    assert not misses, "\n".join(misses)
    assert json.loads((tmp_path / "book" / "manifest.json").read_text())["config"][
        "events_per_user_month"] != targets["events_per_user_month"]  # fitted, not copied
    assert config_path(EXAMPLE).exists()
