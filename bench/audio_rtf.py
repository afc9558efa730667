"""Real-time factor of TTS and of render for a 5-minute bulletin, against bare ffmpeg in the same run.

Run: .venv/bin/python bench/audio_rtf.py [--seeds ../shared/seeds] [--minutes 5] [--repeat 3]

The bulletin text is built from the seed reports' lines, in order, until espeak-ng takes at least
`--minutes` to speak it (the number of words is estimated, synthesised, and corrected once or twice).
Then, `--repeat` times each:
- `normalize`: text normalisation alone,
- `tts_<backend>`: espeak-ng synthesis of the normalised text to WAV (no cache), for the binary and,
  if installed, the espeakng-loader library,
- `tts_cache_hit`: the same call answered from the synthesis cache,
- `render_mp3` / `render_opus`: `audio.render.render` of that WAV (trim, two-pass loudnorm, encode,
  ebur128 verification, correction passes when the measurement misses),
- `bare_ffmpeg_mp3`: the baseline, two ffmpeg runs doing the same two-pass loudnorm and MP3 encode
  (first pass measures, second pass applies `linear=true` with the measured values), nothing else.
Real-time factor = wall seconds / seconds of audio (lower is faster). The median of the repeats is
reported, with the ratio of each render to the baseline and the loudness each output measured at.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio.measure import measure_loudness, probe  # noqa: E402
from audio.render import MP3_BITRATE, render  # noqa: E402
from audio.speech import spoken_form, text_to_wav  # noqa: E402
from audio.tts.cache import SynthesisCache  # noqa: E402
from audio.tts.espeak import EspeakEngine  # noqa: E402

# The district reports sit beside the checkout in the team's workspace; a clone elsewhere has none, and then the
# bulletin is our own sample text (bench/data/bulletin_vi.txt) repeated to length.
_SEED_DIRS = (ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds"))
DEFAULT_SEEDS = next((d for d in _SEED_DIRS if any(d.glob("*.txt"))), _SEED_DIRS[0])
SAMPLE_TEXT = ROOT / "bench" / "data" / "bulletin_vi.txt"
# First guess of espeak-ng's Vietnamese speaking rate, in spoken words (syllables) per minute.
WORDS_PER_MINUTE = 250
_JSON = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.DOTALL)


def _text_lines(seeds: Path) -> Iterator[str]:
    """The seed reports' lines in order; without any, the sample bulletin's lines over and over."""
    paths = sorted(seeds.glob("*.txt"))
    if paths:
        for path in paths:
            yield from path.read_text(encoding="utf-8").splitlines()
        return
    sample = SAMPLE_TEXT.read_text(encoding="utf-8").splitlines()
    while True:
        yield from sample


def bulletin_text(seeds: Path, wanted: int) -> str:
    """Seed lines in order until the spoken form has at least `wanted` words."""
    picked: list[str] = []
    words = 0
    for raw in _text_lines(seeds):
        line = unicodedata.normalize("NFC", raw).strip()
        # Skip table rows and links: nobody reads those on the loudspeaker.
        if len(line) < 40 or "http" in line or line.count("|") > 1:
            continue
        picked.append(line if line[-1] in ".;:!?" else line + ".")
        words += len(spoken_form(line).split())
        if words >= wanted:
            break
    return " ".join(picked)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bare_ffmpeg_mp3(src: Path, out: Path, target: float = -16.0, peak: float = -1.5) -> None:
    """What a script would do with ffmpeg alone: loudnorm first pass, then linear second pass to MP3."""
    first = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-i", str(src),
         "-af", f"loudnorm=I={target}:TP={peak}:LRA=11:print_format=json", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    m = json.loads(_JSON.search(first.stderr).group(0))
    second = (
        f"loudnorm=I={target}:TP={peak}:LRA=11:measured_I={m['input_i']}:measured_TP={m['input_tp']}"
        f":measured_LRA={m['input_lra']}:measured_thresh={m['input_thresh']}:offset={m['target_offset']}"
        ":linear=true:print_format=none"
    )
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-y", "-i", str(src), "-af", second,
         "-ac", "1", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", MP3_BITRATE, str(out)],
        capture_output=True, check=True,
    )  # fmt: skip


def spoken_bulletin(seeds: Path, minutes: float, wav: Path) -> tuple[str, float]:
    """Speak seed lines to `wav` until espeak-ng takes at least `minutes`; return (text, seconds of audio)."""
    wanted_s = minutes * 60
    words = int(minutes * WORDS_PER_MINUTE)
    for _ in range(4):
        text = bulletin_text(seeds, words)
        text_to_wav(text, wav, engine=EspeakEngine(backend="binary"), cache=False)
        audio_s = probe(wav).duration_s or 0.0
        if audio_s >= wanted_s:
            break
        words = int(words * wanted_s / max(audio_s, 1.0) * 1.02) + 1
    return text, audio_s


def render_against_ffmpeg(seeds: Path = DEFAULT_SEEDS, minutes: float = 5.0, repeat: int = 1) -> dict[str, object]:
    """`audio.render` to MP3 against the bare two-pass ffmpeg baseline on the same spoken bulletin (for the suite)."""
    with tempfile.TemporaryDirectory(prefix="bcast-rtf-") as tmp:
        work = Path(tmp)
        wav = work / "bulletin.wav"
        _, audio_s = spoken_bulletin(seeds, minutes, wav)
        render_s = timed(lambda: render(wav, work / "render.mp3", fmt="mp3"), repeat)
        bare_s = timed(lambda: bare_ffmpeg_mp3(wav, work / "bare.mp3"), repeat)
    return {
        "audio_s": round(audio_s, 2),
        "repeat": repeat,
        "render_s": round(render_s, 3),
        "bare_ffmpeg_s": round(bare_s, 3),
        "render_rtf": float(f"{render_s / audio_s:.3g}"),
        "bare_ffmpeg_rtf": float(f"{bare_s / audio_s:.3g}"),
        "render_rtf_ratio": round(render_s / bare_s, 2),
    }


def machine() -> dict[str, object]:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "ffmpeg": ffmpeg,
        "espeak": EspeakEngine(backend="binary").available().reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=Path, default=DEFAULT_SEEDS)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bcast-rtf-"))
    wav = work / "bulletin.wav"
    text, audio_s = spoken_bulletin(args.seeds, args.minutes, wav)
    spoken = spoken_form(text)
    report: dict[str, object] = {"machine": machine(), "repeat": args.repeat, "text_chars": len(text)}

    seconds: dict[str, float] = {"normalize": timed(lambda: spoken_form(text), args.repeat)}
    backends = ["binary"]
    if EspeakEngine(binary="/nonexistent/espeak-ng").available().ok:
        backends.append("library")
    for backend in backends:
        engine = EspeakEngine(backend=backend)
        out = work / f"tts-{backend}.wav"
        seconds[f"tts_{backend}"] = timed(
            lambda engine=engine, out=out: text_to_wav(text, out, engine=engine, cache=False), args.repeat
        )
    cache = SynthesisCache(work / "cache")
    text_to_wav(text, work / "warm.wav", engine=EspeakEngine(backend="binary"), cache=cache)
    seconds["tts_cache_hit"] = timed(
        lambda: text_to_wav(text, work / "hit.wav", engine=EspeakEngine(backend="binary"), cache=cache), args.repeat
    )

    results = {}
    for fmt in ("mp3", "opus"):
        out = work / f"render.{fmt}"
        seconds[f"render_{fmt}"] = timed(lambda fmt=fmt, out=out: render(wav, out, fmt=fmt), args.repeat)
        results[f"render_{fmt}"] = measure_loudness(out)
    bare = work / "bare.mp3"
    seconds["bare_ffmpeg_mp3"] = timed(lambda: bare_ffmpeg_mp3(wav, bare), args.repeat)
    results["bare_ffmpeg_mp3"] = measure_loudness(bare)

    report["audio_seconds"] = round(audio_s, 2)
    report["spoken_words"] = len(spoken.split())
    report["seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    report["rtf"] = {k: float(f"{v / audio_s:.3g}") for k, v in seconds.items()}
    report["ratio_to_bare_ffmpeg"] = {
        k: round(seconds[k] / seconds["bare_ffmpeg_mp3"], 2) for k in ("render_mp3", "render_opus")
    }
    report["output_loudness"] = {
        k: {"integrated_lufs": v.integrated_lufs, "true_peak_dbtp": v.true_peak_dbtp} for k, v in results.items()
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
