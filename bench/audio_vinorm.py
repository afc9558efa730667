"""Compare bcast's text normaliser with vinorm (the reference, a prebuilt binary on PyPI) on the same lines.

Run: .venv/bin/python bench/audio_vinorm.py [--seeds ../shared/seeds] [--dump FILE]

Inputs: every non-empty line of the seed reports plus HARD_CASES below. Both normalisers see each line
on its own (vinorm's binary is run once per line, from a private copy of its package directory, with
case kept so that left-over abbreviations stay visible). For each it counts, over all lines:
- lines with a digit left, and digit runs left (the TTS would read them digit by digit or in English),
- unknown all-caps tokens left (two or more letters, all upper case, not a Vietnamese syllable),
- hand-checked expectations met (HARD_CASES: a regex the spoken form must match, checked on lower-cased
  text with punctuation removed).
It prints one JSON object; `--dump` writes every line with both outputs for reading by eye.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio.normalize import normalize_text  # noqa: E402
from audio.normalize.abbreviations import is_syllable  # noqa: E402

# (written form, regex its spoken form must match). Expectations were written from Vietnamese reading
# rules, not from either normaliser's output; some accept two customary readings.
HARD_CASES: list[tuple[str, str]] = [
    ("Ngày 15/3/2024, UBND xã họp.", r"ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi tư ủy ban nhân dân"),
    ("Họp lúc 7h30 sáng mai.", r"bảy giờ ba mươi"),
    ("Giá 1.250.000 đồng/tạ.", r"một triệu hai trăm năm mươi nghìn đồng"),
    ("Hỗ trợ 1.000.000.000 đồng.", r"một tỷ đồng"),
    ("Nước dâng 5-7m.", r"năm đến bảy mét"),
    ("Gió 60 km/h.", r"sáu mươi ki lô mét trên giờ|sáu mươi kí lô mét trên giờ"),
    ("Nhiệt độ 25°C.", r"hai mươi lăm độ xê"),
    ("Lãi suất 15,5%.", r"mười lăm phẩy năm phần trăm"),
    ("Gọi 0912 345 678.", r"không chín một hai ba bốn năm sáu bảy tám"),
    ("Theo Nghị định 42/2022/NĐ-CP.", r"bốn mươi hai năm hai nghìn không trăm hai mươi hai nghị định chính phủ"),
    ("Kế hoạch 169/KH-UBND.", r"một trăm sáu mươi chín kế hoạch ủy ban nhân dân"),
    ("Kết quả quý I.", r"quý một"),
    ("Xếp thứ 4 toàn tỉnh.", r"thứ tư"),
    ("Có 105 hộ nghèo.", r"một trăm (linh|lẻ) năm hộ"),
    ("Sản lượng 21 tấn.", r"hai mươi mốt tấn"),
    ("Ngày 30/4 và 1/5.", r"ba mươi tháng tư và (mùng )?một tháng năm"),
    ("Lúc 14 giờ 05.", r"mười bốn giờ (không )?năm"),
    ("Lúc 17:00.", r"mười bảy giờ"),
    ("Diện tích 3,5 ha.", r"ba phẩy năm héc ta"),
    ("CĐS và CNTT.", r"chuyển đổi số và công nghệ thông tin"),
    ("HĐND, TTHC, BCĐ, CBCC.", r"hội đồng nhân dân thủ tục hành chính ban chỉ đạo cán bộ công chức"),
    ("Phòng chống COVID-19.", r"mười chín"),
    ("Năm 1975.", r"một nghìn chín trăm bảy mươi lăm"),
    ("Xây 3.000 m2 nhà văn hóa.", r"ba nghìn mét vuông"),
]

_CAPS = re.compile(r"(?<!\w)[^\W\d_]{2,}(?!\w)")


def vinorm_runner(work: Path) -> Callable[[str], str]:
    """Return a function normalising one line with vinorm's binary, run from a copy of it in `work`."""
    import importlib.util

    spec = importlib.util.find_spec("vinorm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("vinorm is not installed (pip install vinorm)")
    package = Path(next(iter(spec.submodule_search_locations)))
    # vinorm reads input.txt and writes output.txt in its working directory: use a copy, not site-packages.
    for name in ("Dict", "Mapping", "RegexRule"):
        shutil.copytree(package / name, work / name)
    (work / "lib").symlink_to(package / "lib")
    shutil.copy2(package / "main", work / "main")
    env = {"LD_LIBRARY_PATH": str(package / "lib"), "PATH": "/usr/bin:/bin"}

    def run(line: str) -> str:
        (work / "input.txt").write_text(line, encoding="utf-8")
        subprocess.run([str(work / "main"), "-unknown"], cwd=work, env=env, check=True, capture_output=True)
        text = (work / "output.txt").read_text(encoding="utf-8")
        return " ".join(s for s in text.split("#line#") if s).strip()

    return run


def seed_lines(folder: Path) -> list[str]:
    lines = []
    for path in sorted(folder.glob("*.txt")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = unicodedata.normalize("NFC", raw).strip()
            if line:
                lines.append(line)
    return lines


def unknown_caps(text: str) -> list[str]:
    return [t for t in _CAPS.findall(text) if t.isupper() and not (is_syllable(t.lower()) and len(t) >= 2)]


def comparable(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: how a listener hears it."""
    text = unicodedata.normalize("NFC", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def score(outputs: list[str]) -> dict[str, object]:
    caps = [tok for out in outputs for tok in unknown_caps(out)]
    return {
        "lines_with_digits": sum(1 for out in outputs if re.search(r"\d", out)),
        "digit_runs_left": sum(len(re.findall(r"\d+", out)) for out in outputs),
        "unknown_caps_left": len(caps),
        "unknown_caps_examples": sorted(set(caps))[:15],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=Path, default=ROOT.parent / "shared" / "seeds")
    parser.add_argument("--dump", type=Path, help="write every line with both outputs to this file")
    args = parser.parse_args()

    seeds = seed_lines(args.seeds)
    hard_inputs = [written for written, _ in HARD_CASES]
    systems: dict[str, Callable[[str], str]] = {"bcast": normalize_text}
    report: dict[str, object] = {"seed_lines": len(seeds), "hard_cases": len(HARD_CASES)}
    work = tempfile.TemporaryDirectory(prefix="vinorm-")
    try:
        vinorm = vinorm_runner(Path(work.name))
        vinorm(hard_inputs[0])
        systems["vinorm"] = vinorm
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        report["vinorm_error"] = f"{type(exc).__name__}: {exc}"

    outputs: dict[str, dict[str, list[str]]] = {}
    for name, fn in systems.items():
        started = time.perf_counter()
        seed_out = [fn(line) for line in seeds]
        hard_out = [fn(line) for line in hard_inputs]
        elapsed = time.perf_counter() - started
        outputs[name] = {"seeds": seed_out, "hard": hard_out}
        met = [bool(re.search(rx, comparable(out))) for out, (_, rx) in zip(hard_out, HARD_CASES, strict=True)]
        report[name] = {
            "seeds": score(seed_out),
            "hard": score(hard_out),
            "expectations_met": sum(met),
            "expectations_missed": [HARD_CASES[i][0] for i, ok in enumerate(met) if not ok],
            "seconds": round(elapsed, 2),
        }
    work.cleanup()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if args.dump:
        with args.dump.open("w", encoding="utf-8") as fh:
            for kind, inputs in (("seeds", seeds), ("hard", hard_inputs)):
                for i, line in enumerate(inputs):
                    fh.write(f"IN     {line}\n")
                    for name in outputs:
                        fh.write(f"{name:<6} {outputs[name][kind][i]}\n")
                    fh.write("\n")


if __name__ == "__main__":
    main()
