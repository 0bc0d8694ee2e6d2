"""Session fixtures shared by the export, serving and Triton model tests: a tiny synthetic
bank, its token shards and two briefly trained nano runs (different steps, so different
weights). Built once per session in a few seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from pragmatiq import api

TRAIN = {"token_budget": 4096, "warmup_steps": 1, "num_threads": 1, "prefetch": 1, "log_every": 1,
         "eval_every": 1000, "checkpoint_every": 1000}


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("book")
    api.synthesize({"n_users": 24, "seed": 11, "n_months": 24, "events_per_user_month": 4.0},
                   out=root / "data", progress=False)
    return root / "data"


@pytest.fixture(scope="session")
def tiny_tok(tiny_book, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tok"
    api.tokenize(tiny_book, out, progress=False)
    return out


def _train(tok: Path, root: Path, name: str, steps: int) -> Path:
    return api.pretrain(tok, name, model_size="nano", config={**TRAIN, "max_steps": steps}, runs_root=root,
                        progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_tok, tmp_path_factory) -> Path:
    return _train(tiny_tok, tmp_path_factory.mktemp("runs"), "a", 2)


@pytest.fixture(scope="session")
def other_run(tiny_tok, tmp_path_factory) -> Path:
    return _train(tiny_tok, tmp_path_factory.mktemp("runs"), "b", 4)


@pytest.fixture(scope="session")
def tiny_records(tiny_book) -> list[dict]:
    """The first 5 users as the served request's records."""
    from pragmatiq.data.records import records_from_data

    return records_from_data(tiny_book, limit=5)


@pytest.fixture(scope="session")
def triton_repo(tiny_run, tmp_path_factory) -> Path:
    """`pragmatiq-export --target triton --variants onnx,tensorrt` of the tiny run."""
    out = tmp_path_factory.mktemp("export") / "model_repository"
    api.export(tiny_run, "triton", out, variants=("onnx", "tensorrt"), progress=lambda msg: None)
    return out


@pytest.fixture(scope="session")
def text_encoder_dir(tmp_path_factory) -> Path:
    """A small sentence-transformers model saved locally (a 1-layer BERT over a lower-case
    character vocabulary, random weights, mean pooling, 16-d): the real library end to end,
    without a download."""
    pytest.importorskip("sentence_transformers", reason='the text extra: pip install "pragmatiq[text]"')
    import string

    import torch
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers import models as tokenizer_models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("text_encoder")
    chars = string.ascii_lowercase + string.digits
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *chars, *(f"##{c}" for c in chars)]
    tok = Tokenizer(tokenizer_models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]").save_pretrained(out / "hf")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64)).save_pretrained(out / "hf")
    word = models.Transformer(str(out / "hf"), max_seq_length=32)
    dim = (getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension)()
    SentenceTransformer(modules=[word, models.Pooling(dim, "mean")]).save(str(out / "st"))
    return out / "st"
