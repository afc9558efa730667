"""The render benchmark's bulletin comes from the seed reports, or from the bundled sample where there are none.

A clean clone outside the team's workspace has no ``../shared/seeds``: CI once failed there with "nothing to
say" because the bulletin came out empty.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from audio.speech import spoken_form  # noqa: E402
from bench.audio_rtf import bulletin_text  # noqa: E402


def test_without_seed_reports_the_sample_text_is_repeated_to_length(tmp_path: Path) -> None:
    text = bulletin_text(tmp_path / "no-seeds-here", 1_000)
    assert len(spoken_form(text).split()) >= 1_000
    assert text.startswith("Đài truyền thanh xã xin thông báo")


def test_seed_reports_are_used_when_present(tmp_path: Path) -> None:
    line = "Huyện đã lắp đặt mười hai cụm loa thông minh tại các thôn vùng sâu trong quý ba"
    link = "http://example.invalid/link-không-đọc-được-trên-loa-phát-thanh"
    (tmp_path / "report.txt").write_text(f"ngắn\n{link}\n{line}")
    assert bulletin_text(tmp_path, 5) == line + "."
