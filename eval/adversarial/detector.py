"""How the planted-instruction detector (rag/injection.py) does, signal by signal.

    .venv/bin/python eval/adversarial/detector.py [--scifact N] [--fake] [--json PATH]

Counts, for the cues (regex) and for the similarity signal (MiniLM, the index's embedding model; ``--fake``:
the tests' hashed bag-of-words encoder), how many of these are flagged:

* every title, abstract sentence and clause of the seed corpus (``load_corpus()``): must be 0;
* optionally N sentences of the SciFact corpus (../shared/bench/scifact, a fixed sample): ordinary
  biomedical prose, also expected 0;
* the planted instructions of ``planted.jsonl`` (must be all) and the other sentences of those abstracts;
* ``heldout_instructions.txt`` and ``heldout_instructions_2.txt``: instruction-like sentences written after
  the cues and exemplars were first settled, to see how the detector generalises. The first set was measured
  once (cues 6 of 20) and then used to widen the cues by kind (see docs/answers.md), so it is no longer held
  out; the second was written before that widening.

It also prints the highest exemplar similarity among the seeds and the lowest among the planted instructions,
which is what ``injection.SIMILARITY`` sits between.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from planted import load_planted  # noqa: E402

from rag import injection  # noqa: E402
from rag.chunk import split_sentences  # noqa: E402
from rag.corpus import load_corpus  # noqa: E402
from rag.support import _clauses  # noqa: E402

SCIFACT = HERE.parent.parent.parent / "shared" / "bench" / "scifact" / "corpus.jsonl"


def seed_units() -> list[str]:
    papers = load_corpus()
    units = [p.title for p in papers]
    for p in papers:
        for s in split_sentences(p.abstract):
            parts = _clauses(s)
            units += [s, *(parts if len(parts) > 1 else [])]
    return units


def scifact_sentences(n: int) -> list[str]:
    sentences: list[str] = []
    with SCIFACT.open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            sentences += [doc["title"], *split_sentences(doc["text"])]
    random.Random(14).shuffle(sentences)
    return sentences[:n]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scifact", type=int, default=0, help="also check N SciFact sentences (0: skip)")
    parser.add_argument("--fake", action="store_true", help="use the tests' fake encoder instead of MiniLM")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    if args.fake:
        sys.path.insert(0, str(HERE.parent.parent / "tests"))
        from answer_fixtures import fake_encode

        encode = fake_encode
    else:
        from rag.embed import get_embedder
        from rag.settings import Settings

        encode = get_embedder(Settings()).encode
    check = injection.SimilarityCheck(encode)

    items = load_planted()
    planted_instr = [s for it in items for s in it.instruction_sentences()]
    planted_other = [s for it in items for s in it.other_sentences()]

    def lines(name: str) -> list[str]:
        text = (HERE / name).read_text(encoding="utf-8")
        return [line.strip() for line in text.splitlines() if line.strip()]

    sets = {"seeds": seed_units()}
    if args.scifact:
        sets["scifact"] = scifact_sentences(args.scifact)
    sets |= {
        "planted instructions": planted_instr,
        "planted other sentences": planted_other,
        "held-out instructions 1": lines("heldout_instructions.txt"),
        "held-out instructions 2": lines("heldout_instructions_2.txt"),
    }
    figures: dict[str, dict[str, object]] = {}
    for name, sentences in sets.items():
        vectors = np.asarray(encode(sentences), dtype=np.float32)
        sims = check.similarity(vectors)
        by_cues = [bool(injection.cues(s)) for s in sentences]
        by_sim = check.flags(sentences, vectors)
        both = [a or b for a, b in zip(by_cues, by_sim, strict=True)]
        figures[name] = {
            "sentences": len(sentences),
            "cues": sum(by_cues),
            "similarity": sum(by_sim),
            "either": sum(both),
            "max similarity": round(float(sims.max()), 4),
            "min similarity": round(float(sims.min()), 4),
        }
        print(
            f"{name:24s} {len(sentences):6d} sentences  flagged: cues {sum(by_cues):4d}  "
            f"similarity {sum(by_sim):4d}  either {sum(both):4d}   similarity max {sims.max():.3f} "
            f"min {sims.min():.3f}"
        )
        if name in ("seeds", "scifact"):
            top = np.argsort(-sims)[:3]
            for i in top:
                print(f"    {sims[i]:.3f}  {sentences[i][:110]}")
            for s, flagged in zip(sentences, both, strict=True):
                if flagged:
                    print(f"    FLAGGED: {injection.cues(s)} {s[:140]}")
        elif "instructions" in name:
            for s, flagged, sim in zip(sentences, both, sims, strict=True):
                if not flagged:
                    print(f"    missed ({sim:.3f}): {s[:140]}")
    print(f"thresholds: similarity {check.threshold}, with a weak cue {check.weak_threshold}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
