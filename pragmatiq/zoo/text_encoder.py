"""The Nemotron variant's frozen text encoder: raw strings of text sentinels -> vectors.

    encoder = FrozenTextEncoder("nvidia/llama-nemotron-embed-1b-v2")   # pip install "pragmatiq[text]"
    batch = with_text_vectors(batch, encoder)                         # fills batch.text_vectors (N, d_text)

A sentence-transformers model (a Hugging Face id or a local directory), never trained. The same
strings recur across a book (merchant names, descriptors), so each distinct string is encoded
once and its vector kept (up to `cache_size` strings). A run records the encoder's name in its
model config (`ModelConfig.text_encoder`), and embedding a run's users uses the same encoder.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pyarrow as pa
import torch

DEFAULT_TEXT_ENCODER = "nvidia/llama-nemotron-embed-1b-v2"
CACHE_STRINGS = 200_000  # distinct strings whose vectors are kept


class FrozenTextEncoder:
    """`encoder(texts)` -> (N, dim) float32 CPU tensor, one row per string, in order."""

    def __init__(self, name: str, device: str | torch.device = "cpu", *, batch_size: int = 64,
                 cache_size: int = CACHE_STRINGS, trust_remote_code: bool = True):
        from pragmatiq._optional import require

        st = require("sentence_transformers")
        self.name, self.batch_size, self.cache_size = name, batch_size, cache_size
        try:
            self.model = st.SentenceTransformer(name, device=str(device), trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ValueError(f"text encoder {name!r} could not be loaded ({exc}); set text_encoder in the "
                             "pretraining config to a sentence-transformers model id or a local directory") from exc
        self.model.eval()
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, self.dim)
        # the batch's distinct strings and, per string, its row among them (in C, not per string)
        coded = pa.array(texts, pa.string()).dictionary_encode()
        uniques = coded.dictionary.to_pylist()  # (K,)
        missing = [t for t in uniques if t not in self._cache]
        fresh = {}
        if missing:
            with torch.inference_mode():
                vectors = self.model.encode(missing, batch_size=self.batch_size, convert_to_numpy=True,
                                            show_progress_bar=False)  # (K', dim)
            fresh = dict(zip(missing, np.asarray(vectors, dtype=np.float32)))
            room = max(self.cache_size - len(self._cache), 0)
            self._cache.update(list(fresh.items())[:room])
        table = np.stack([self._cache[t] if t in self._cache else fresh[t] for t in uniques])  # (K, dim)
        return torch.from_numpy(table[coded.indices.to_numpy()])  # (N, dim)


@functools.lru_cache(maxsize=1)
def load_text_encoder(name: str, device: str = "cpu") -> FrozenTextEncoder:
    """The encoder `name` on `device`, loaded once per process and reused (with its vectors) by
    every later call: a probe per task embeds the same book again, at another cut."""
    return FrozenTextEncoder(name, device)


def with_text_vectors(batch, encoder: FrozenTextEncoder | None):
    """The batch with `text_vectors` (N, d_text) for its text sentinels' strings; unchanged when
    there is no encoder or the batch has no sentinels."""
    if encoder is None or batch.texts is None or batch.text_token_index is None:
        return batch
    return replace(batch, text_vectors=encoder(batch.texts))


def encoder_for(model, device: str | torch.device = "cpu") -> FrozenTextEncoder | None:
    """The frozen encoder a Nemotron-variant model was trained with (None for other models)."""
    config = model.config
    if not config.d_text:
        return None
    if not config.text_encoder:
        raise ValueError("this model reads text vectors (d_text > 0) but its config names no text encoder")
    encoder = load_text_encoder(config.text_encoder, str(device))
    if encoder.dim != config.d_text:
        raise ValueError(f"text encoder {config.text_encoder!r} gives {encoder.dim}-d vectors; the model "
                         f"was trained on {config.d_text}-d ones")
    return encoder
