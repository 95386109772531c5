"""Cold start: `rag search` loads no model runtime it does not need, and the numpy query encoder gives
sentence-transformers' vectors and word pieces (rag.query_encoder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_index import FakeEmbedder, papers

from rag.settings import PROJECT_ROOT, Settings

HEAVY = ("torch", "transformers", "sentence_transformers", "litellm", "gradio", "llama_cpp", "numba")

_PROBE = """
import json, sys
from rag.cli import main
code = main(["search", "Paper 2 finding", "--k", "2", "--json"])
print(json.dumps({"code": code, "modules": sorted(m.split(".")[0] for m in sys.modules)}))
"""


class _FakeMiniLM(FakeEmbedder):
    dim = 384  # the query side is the real MiniLM (numpy); the index only needs vectors of its size


def test_search_imports_no_model_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.index

    fake = _FakeMiniLM()
    monkeypatch.setattr(rag.index, "get_embedder", lambda settings=None: fake)
    settings = Settings()
    settings.index.late_interaction = False
    rag.index.build_index(papers(4), settings)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    hits = json.loads(done.stdout[: done.stdout.rindex("\n{")])["hits"]
    assert last["code"] == 0 and len(hits) == 2
    assert {h["paper"]["id"] for h in hits} <= {"p0", "p1", "p2", "p3"}
    loaded = set(last["modules"])
    assert "rag" in loaded and "chromadb" in loaded, "the probe did search"
    assert not loaded & set(HEAVY), f"rag search imported {sorted(loaded & set(HEAVY))}"


# ----------------------------------------------------------------------- the query encoder vs torch
def _texts() -> list[str]:
    questions = [
        json.loads(line)["question"]
        for line in (PROJECT_ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    ]
    abstracts = [p.title + ". " + p.abstract for p in _seed_papers()[:6]]
    odd = ["edge of stability", "  Über-large ResNets reach 93.5% top-1?  ", "α-helices", "x", "word " * 300]
    return questions + abstracts + odd


def _seed_papers() -> list:  # type: ignore[type-arg]
    from rag.corpus import load_corpus

    return load_corpus(settings=Settings())


@pytest.mark.slow
def test_query_encoder_matches_sentence_transformers() -> None:
    from rag.embed import get_embedder
    from rag.query_encoder import QueryEncoder, get_query_encoder

    settings = Settings()
    light = get_query_encoder(settings)
    assert isinstance(light, QueryEncoder), "the default model is served without torch"
    torch_side = get_embedder(settings)
    texts = _texts()
    for text in texts:  # one question: pooled vector, word pieces (ids and vectors), as search uses them
        vec, ids, pieces = light.encode_query_with_tokens(text)
        ref_vec, ref_ids, ref_pieces = torch_side.encode_query_with_tokens(text)
        assert ids.tolist() == ref_ids.tolist(), text  # same word pieces, special tokens, truncation
        assert float(vec @ ref_vec) >= 0.9999, text
        norms = np.linalg.norm(pieces, axis=1) * np.linalg.norm(ref_pieces, axis=1)
        cos = (pieces * ref_pieces).sum(1) / norms
        assert float(cos.min()) >= 0.9999, text
    batch, ref = light.encode(texts), torch_side.encode(texts)  # padded batches (answer-time support checks)
    assert batch.shape == ref.shape and float((batch * ref).sum(1).min()) >= 0.9999
