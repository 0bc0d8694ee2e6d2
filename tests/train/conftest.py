import pytest

from pragmatiq import api


@pytest.fixture(scope="session")
def small_tok(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    api.synthesize({"n_users": 40, "seed": 5, "n_months": 20, "events_per_user_month": 4.0}, out=root / "data",
                   progress=False)
    api.tokenize(root / "data", root / "tok", progress=False)
    return root / "tok"


TINY = {"token_budget": 4096, "log_every": 1, "eval_every": 5, "checkpoint_every": 5, "warmup_steps": 2,
        "num_threads": 1, "prefetch": 1}


@pytest.fixture(scope="session")
def nemotron_tok(tmp_path_factory):
    """small_tok's book tokenized for the Nemotron variant: text fields as sentinels with their strings."""
    root = tmp_path_factory.mktemp("nemotron")
    api.synthesize({"n_users": 40, "seed": 5, "n_months": 20, "events_per_user_month": 4.0}, out=root / "data",
                   progress=False)
    # merchant names as text (a book this small has too few of them to be inferred as text)
    api.tokenize(root / "data", root / "tok", config={"nemotron": True, "kinds": {"merchant": "text"}},
                 progress=False)
    return root / "tok"
