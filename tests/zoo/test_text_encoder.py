"""The Nemotron variant's frozen text encoder: vectors per string, in order, each string encoded once."""

import pytest
import torch

from pragmatiq.zoo import create_model
from pragmatiq.zoo.text_encoder import FrozenTextEncoder, encoder_for, with_text_vectors


def test_vectors_in_order_and_each_distinct_string_encoded_once(text_encoder_dir):
    from sentence_transformers import SentenceTransformer

    enc = FrozenTextEncoder(str(text_encoder_dir))
    seen = []
    encode = enc.model.encode
    enc.model.encode = lambda texts, **kw: (seen.extend(texts), encode(texts, **kw))[1]
    texts = ["Tesco Metro", "uber trip 42", "Tesco Metro"]
    v = enc(texts)
    assert v.shape == (3, enc.dim) and enc.dim == 16 and v.dtype == torch.float32
    assert torch.equal(v[0], v[2]) and not torch.equal(v[0], v[1])
    ref = SentenceTransformer(str(text_encoder_dir), device="cpu").encode(["Tesco Metro", "uber trip 42"])
    assert torch.allclose(v[:2], torch.from_numpy(ref), atol=1e-6)
    assert torch.equal(enc(["uber trip 42", "new one"])[0], v[1])  # from the cache
    assert seen == ["Tesco Metro", "uber trip 42", "new one"]
    assert enc([]).shape == (0, 16)


def test_with_text_vectors_and_the_encoder_a_model_names(text_encoder_dir, tiny_tok):
    from pragmatiq.tokenizer import TokenDataset, collate

    batch = collate(TokenDataset(tiny_tok).read([0, 1]))
    assert with_text_vectors(batch, None) is batch and batch.texts is None
    enc = FrozenTextEncoder(str(text_encoder_dir))
    assert with_text_vectors(batch, enc) is batch  # no text sentinels in BPE shards
    assert encoder_for(create_model("nano", vocab_size=50)) is None
    model = create_model("nano", vocab_size=50, d_text=16, text_encoder=str(text_encoder_dir))
    assert encoder_for(model).dim == 16
    with pytest.raises(ValueError, match="gives 16-d vectors; the model was trained on 8-d"):
        encoder_for(create_model("nano", vocab_size=50, d_text=8, text_encoder=str(text_encoder_dir)))


def test_an_encoder_that_cannot_load_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ValueError, match="text encoder .* could not be loaded"):
        FrozenTextEncoder(str(tmp_path / "no-such-model"))
