"""The fitted vocabulary: one JSON artifact with a sha256 content hash.

Id layout: specials `[PAD]=0 [MASK]=1 [UNK]=2 [USR]=3 [EVT]=4`, then one id per key (keys
sorted by name), then the value ids of each key in key order, then the BPE pieces shared by
every text key. Key namespaces: event field keys by name, `source` for the event source,
`profile.<attribute>` for profile attributes, `lifelong.<milestone>` for lifelong milestones.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

PAD, MASK, UNK, USR, EVT = 0, 1, 2, 3, 4
SPECIALS = ("[PAD]", "[MASK]", "[UNK]", "[USR]", "[EVT]")
SOURCE_KEY = "source"
PROFILE_PREFIX = "profile."
LIFELONG_PREFIX = "lifelong."
PRESENT = "present"  # the one value of a lifelong milestone key
TEXT_SENTINEL = "[TXT]"  # the one value of a text key in the Nemotron variant
FORMAT_VERSION = 1


@dataclass
class KeySpec:
    name: str
    kind: str  # numeric | categorical | text
    key_id: int
    offset: int  # first value id of this key
    n_values: int
    edges: list[float] | None = None  # numeric: bucket edges (n_buckets - 1)
    values: list[str] | None = None  # categorical: values in id order


@dataclass
class Vocab:
    keys: dict[str, KeySpec]
    bpe_offset: int
    bpe_json: str | None  # HF tokenizers JSON of the byte-level BPE model
    size: int
    config: dict = field(default_factory=dict)  # the TokenizerConfig it was fitted with

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, specs: list[tuple[str, str, list]], bpe_json: str | None, bpe_size: int,
              config: dict) -> "Vocab":
        """specs: (name, kind, payload) with payload = edges (numeric), values (categorical)
        or [] (text); ids are laid out here."""
        specs = sorted(specs, key=lambda s: s[0])
        key_ids = {name: len(SPECIALS) + i for i, (name, _, _) in enumerate(specs)}
        offset = len(SPECIALS) + len(specs)
        keys = {}
        for name, kind, payload in specs:
            if kind == "numeric":
                n = len(payload) + 2  # zero bucket + len(edges)+1 buckets
                spec = KeySpec(name, kind, key_ids[name], offset, n, edges=[float(x) for x in payload])
            elif kind == "categorical":
                spec = KeySpec(name, kind, key_ids[name], offset, len(payload), values=list(payload))
            else:
                n = 1 if config.get("nemotron") else 0  # the sentinel id
                spec = KeySpec(name, kind, key_ids[name], offset, n)
            keys[name] = spec
            offset += spec.n_values
        return cls(keys, offset, bpe_json, offset + bpe_size, dict(config))

    # ------------------------------------------------------------------ artifact
    def to_dict(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "specials": list(SPECIALS),
            "size": self.size,
            "bpe_offset": self.bpe_offset,
            "keys": [asdict(k) for k in self.keys.values()],
            "bpe": self.bpe_json,
            "config": self.config,
        }

    @cached_property
    def sha256(self) -> str:
        body = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        payload = self.to_dict() | {"sha256": self.sha256}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        path = Path(path)
        if path.is_dir():
            path = path / "vocab.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"vocabulary not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not a pragmatiq vocabulary (invalid JSON: {exc})") from None
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: vocabulary format {data.get('format')!r}, expected {FORMAT_VERSION}")
        keys = {k["name"]: KeySpec(**k) for k in data["keys"]}
        vocab = cls(keys, data["bpe_offset"], data["bpe"], data["size"], data.get("config", {}))
        if data.get("sha256") != vocab.sha256:
            raise ValueError(f"{path}: content hash mismatch (the file was edited or is corrupt)")
        return vocab

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return self.size

    @cached_property
    def key_names(self) -> list[str]:
        return list(self.keys)

    @cached_property
    def bpe(self):
        if self.bpe_json is None:
            return None
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.bpe_json)

    @cached_property
    def key_ids(self) -> np.ndarray:
        """(K,) id of every key, in `key_names` order."""
        return np.array([k.key_id for k in self.keys.values()], np.int64)

    def value_set(self, key: str):
        """The values of a categorical key, in id order, as an Arrow string array (cached)."""
        import pyarrow as pa

        sets = self.__dict__.setdefault("_value_sets", {})
        if key not in sets:
            sets[key] = pa.array(self.keys[key].values or [], pa.string())
        return sets[key]

    @cached_property
    def piece_cache(self):
        """BPE pieces of the text values this vocabulary has encoded so far (bounded)."""
        from pragmatiq.tokenizer.text import PieceCache

        return PieceCache(self.bpe) if self.bpe is not None else None

    @cached_property
    def edges(self) -> dict[str, np.ndarray]:
        return {n: np.asarray(k.edges, np.float64) for n, k in self.keys.items() if k.kind == "numeric"}

    def id_to_token(self, i: int) -> str:
        """A readable name for an id (for debugging and tests)."""
        if i < len(SPECIALS):
            return SPECIALS[i]
        for k in self.keys.values():
            if i == k.key_id:
                return f"<{k.name}>"
            if k.offset <= i < k.offset + k.n_values:
                j = i - k.offset
                if k.kind == "categorical":
                    return f"{k.name}={k.values[j]}"
                if k.kind == "numeric":
                    return f"{k.name}#{'zero' if j == 0 else j}"
                return f"{k.name}={TEXT_SENTINEL}"
        if self.bpe is not None and self.bpe_offset <= i < self.size:
            return f"bpe:{self.bpe.id_to_token(i - self.bpe_offset)}"
        raise IndexError(f"id {i} is outside the vocabulary (size {self.size})")
