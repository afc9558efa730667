"""Short spoken phrases through `audio.render`: how many reach the loudness target and the true-peak limit.

Run: .venv/bin/python bench/audio_short_phrases.py [--seed 1] [--phrases 20] [--seeds ../shared/seeds]

Sentences and clauses of 15 to 100 characters are drawn from the seed reports (or the bundled sample bulletin), each
spoken by espeak-ng in its three Vietnamese voices at 140, the engine's own and 210 words a minute, then
rendered to MP3 as a bulletin is. A render that cannot reach -16 LUFS within 1 LU under -1.5 dBTP is
refused (`LoudnessNotReached`): for a commune broadcaster, a short announcement that cannot be sent.
Prints one JSON object: renders, refused, the loudest true peak written, and each refusal's reason.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio.errors import LoudnessNotReached  # noqa: E402
from audio.render import render  # noqa: E402
from audio.speech import text_to_wav  # noqa: E402
from audio.tts.espeak import VOICES  # noqa: E402

SPEEDS = (140, None, 210)


def sentences(seeds: Path) -> list[str]:
    files = sorted(seeds.glob("*.txt")) if seeds.is_dir() else []
    text = " ".join(p.read_text(encoding="utf-8") for p in files) or (ROOT / "bench/data/bulletin_vi.txt").read_text(
        encoding="utf-8"
    )
    found = (s.strip() for s in re.split(r"[.!?\n;,]", text))  # sentences and clauses: short announcements
    return sorted({s for s in found if 15 <= len(s) <= 100 and not re.search(r"[|#*<>\[\]]", s)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phrases", type=int, default=20)
    parser.add_argument("--seeds", type=Path, default=ROOT.parent / "shared" / "seeds")
    args = parser.parse_args()
    pool = sentences(args.seeds)
    chosen = random.Random(args.seed).sample(pool, min(args.phrases, len(pool)))
    refused: list[dict[str, object]] = []
    renders, loudest = 0, -99.0
    with tempfile.TemporaryDirectory(prefix="bcast-phrases-") as work:
        for phrase in chosen:
            for voice in VOICES:
                for rate in SPEEDS:
                    wav = text_to_wav(phrase, Path(work) / "phrase.wav", voice=voice, rate_wpm=rate, cache=False)
                    renders += 1
                    try:
                        loudest = max(loudest, render(wav, Path(work) / "phrase.mp3", fmt="mp3").true_peak_dbtp)
                    except LoudnessNotReached as exc:
                        refused.append({"phrase": phrase, "voice": voice, "rate_wpm": rate, "reason": str(exc)})
    print(
        json.dumps(
            {"renders": renders, "refused": len(refused), "loudest_true_peak_dbtp": loudest, "refusals": refused},
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
