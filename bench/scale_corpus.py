"""Synthetic paper corpora for bench/scale.py, built deterministically from the SciFact abstracts.

Paper ``i`` of a corpus depends only on ``(seed, i)``: its title joins the first part of one SciFact title
to the rest of another, its abstract has as many sentences as a randomly drawn SciFact abstract, each drawn
from the whole SciFact sentence pool, and it gets 2–8 authors from small name lists, a year, a venue and
a DOI. So the first 1,000 papers of the 100k corpus are the 1k corpus, every text is distinct (titles are
checked; a clash is redrawn) and the vocabulary and length distribution are SciFact's. Written as JSON
lines that ``rag.sources.jsonl`` reads (``id``, ``title``, ``authors``, ``abstract``, ``year``, ``venue``,
``doi``).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")

FIRST = """Ada Alan Amira Ana Anders Bo Carla Chen Dario Deepa Elena Emil Fatima Felix Grace Hana Hugo Ines
Ivan Jana Jonas Kai Kenji Lara Leo Lina Luca Maya Mei Mohammed Nadia Nils Noor Omar Pablo Priya Rafael Rosa
Sara Sofia Tariq Tomas Uma Viktor Wei Yara Yusuf Zoe""".split()
LAST = """Abe Adeyemi Alvarez Andersen Bauer Becker Chandra Costa Dubois Eriksson Fischer Garcia Gupta Haddad
Hansen Ito Jensen Kim Kowalski Kumar Larsen Li Lopez Martin Meyer Moreau Muller Nakamura Nguyen Novak Okafor
Olsen Park Patel Petrov Rossi Santos Schmidt Silva Singh Smith Suzuki Tanaka Tran Wagner Wang Weber Yilmaz
Zhang Zhou""".split()
VENUES = ["J Clin Invest", "Nature", "Cell", "PLoS One", "Lancet", "BMJ", "Sci Rep", "Immunity", "Neuron",
          "Circulation", "Blood", "JAMA", "Nat Med", "Cancer Res", "Diabetes"]


@dataclass(frozen=True)
class Pools:
    """What the papers are drawn from: SciFact's titles, sentences, and sentence counts per abstract."""

    titles: list[list[str]]
    sentences: list[str]
    lengths: list[int]


def load_pools(corpus: Path) -> Pools:
    """Titles (as word lists), sentences and sentence counts of a BEIR ``corpus.jsonl``."""
    titles: list[list[str]] = []
    sentences: list[str] = []
    lengths: list[int] = []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            words = str(doc.get("title") or "").split()
            if len(words) >= 2:
                titles.append(words)
            parts = [s.strip() for s in _SENTENCE_END.split(" ".join(str(doc.get("text", "")).split()))]
            parts = [s for s in parts if s]
            if parts:
                sentences.extend(parts)
                lengths.append(len(parts))
    if not titles or not sentences:
        raise SystemExit(f"{corpus} has no titles or abstracts to build a synthetic corpus from.")
    return Pools(titles, sentences, lengths)


def _title(rng: random.Random, pools: Pools) -> str:
    a, b = rng.choice(pools.titles), rng.choice(pools.titles)
    cut_a = rng.randint(1, max(1, len(a) - 1))
    cut_b = rng.randint(1, max(1, len(b) - 1))
    return " ".join(a[:cut_a] + b[cut_b:])


def paper(i: int, pools: Pools, seed: int, prefix: str = "syn") -> dict[str, object]:
    """Synthetic paper number ``i`` (depends only on ``seed`` and ``i``)."""
    rng = random.Random(f"{seed}:{prefix}:{i}")
    n_sentences = rng.choice(pools.lengths)
    return {
        "id": f"{prefix}{i:07d}",
        "title": _title(rng, pools),
        "authors": [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(rng.randint(2, 8))],
        "abstract": " ".join(rng.choice(pools.sentences) for _ in range(n_sentences)),
        "year": rng.randint(1990, 2025),
        "venue": rng.choice(VENUES),
        "doi": f"10.5555/{prefix}.{i}",
    }


def write_corpus(path: Path, n: int, pools: Pools, *, seed: int = 13, prefix: str = "syn") -> Path:
    """Write papers ``0..n-1`` to ``path`` (JSON lines) unless it already holds exactly them."""
    stamp = path.with_suffix(".done")
    want = f"{n} {seed} {prefix} {len(pools.sentences)}"
    if path.is_file() and stamp.is_file() and stamp.read_text() == want:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            record = paper(i, pools, seed, prefix)
            retry = 0
            while str(record["title"]).lower() in seen:  # a title clash: redraw this paper
                retry += 1
                record = {**paper(i, pools, seed + retry, prefix), "id": record["id"]}
            seen.add(str(record["title"]).lower())
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    stamp.write_text(want)
    return path
