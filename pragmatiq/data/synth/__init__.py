"""The synthetic bank (DESIGN §3): a deterministic generator of the full data contract and
`calibrate`, which fits its priors to aggregates a bank can share.

    from pragmatiq.data.synth import synthesize
    synthesize({"n_users": 2000, "seed": 0}, out="data", n_workers=2)
"""

from __future__ import annotations

from pragmatiq.data.synth.config import SynthConfig, load_synth_config
from pragmatiq.data.synth.writer import synthesize


def calibrate(stats, out=None, *, progress: bool = True, **kwargs) -> dict:
    """Fit the generator's priors to shareable aggregates and return the config (written as
    YAML to `out` if given). See `pragmatiq.data.synth.calibrate.calibrate` for `base`,
    `pilot_users` and `iterations`."""
    from pragmatiq.data.synth.calibrate import calibrate as _calibrate

    return _calibrate(stats, out, progress=progress, **kwargs)


__all__ = ["SynthConfig", "calibrate", "load_synth_config", "synthesize"]
