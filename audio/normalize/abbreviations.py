"""Abbreviation dictionary (TSV, extendable per district) and reading of all-caps tokens."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

BUILTIN_PATH = Path(__file__).with_name("data") / "abbreviations.tsv"
ENV_VAR = "BCAST_TTS_DICTIONARY"

LETTER_NAMES = {
    "A": "a", "Ă": "á", "Â": "ớ", "B": "bê", "C": "xê", "D": "dê", "Đ": "đê", "E": "e", "Ê": "ê",
    "F": "ép", "G": "giê", "H": "hát", "I": "i", "J": "gi", "K": "ca", "L": "e lờ", "M": "em mờ",
    "N": "en nờ", "O": "o", "Ô": "ô", "Ơ": "ơ", "P": "pê", "Q": "quy", "R": "e rờ", "S": "ét",
    "T": "tê", "U": "u", "Ư": "ư", "V": "vê", "W": "vê kép", "X": "ích", "Y": "i dài", "Z": "dét",
}  # fmt: skip

_SYLLABLE_RE = re.compile(
    r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnprstvx])?"
    r"[aăâeêioôơuưyáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]{1,3}"
    r"(?:ng|nh|ch|[cmnpt])?"
)


class Dictionary:
    """Abbreviation -> reading. Later files override earlier ones; keys are matched exactly."""

    def __init__(self, entries: dict[str, str] | None = None) -> None:
        self.entries: dict[str, str] = dict(entries or {})

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike[str]] | None = None, *, builtin: bool = True) -> Dictionary:
        """Builtin TSV, then files in $BCAST_TTS_DICTIONARY (os.pathsep-separated), then `paths`."""
        files: list[Path] = [BUILTIN_PATH] if builtin else []
        env = os.environ.get(ENV_VAR, "")
        files += [Path(p) for p in env.split(os.pathsep) if p.strip()]
        files += [Path(p) for p in paths or ()]
        dictionary = cls()
        for file in files:
            dictionary.update_from_tsv(file.read_text(encoding="utf-8"))
        return dictionary

    def update_from_tsv(self, text: str) -> None:
        """Parse 'ABBR<TAB>reading' lines; '#' starts a comment, blank lines are skipped."""
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
            if not line.strip():
                continue
            key, sep, reading = line.partition("\t")
            if not sep or not key.strip() or not reading.strip():
                raise ValueError(f"bad dictionary line (want ABBREVIATION<TAB>reading): {raw!r}")
            self.entries[unicodedata.normalize("NFC", key.strip())] = " ".join(
                unicodedata.normalize("NFC", reading).split()
            )

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)


_default: Dictionary | None = None


def default_dictionary() -> Dictionary:
    """The builtin dictionary plus $BCAST_TTS_DICTIONARY, loaded once per process."""
    global _default
    if _default is None:
        _default = Dictionary.load()
    return _default


def spell(token: str) -> str:
    """Spell letters by their Vietnamese names: 'ĐT' -> 'đê tê'."""
    words = []
    for ch in token:
        base = ch.upper()
        if base in LETTER_NAMES:
            words.append(LETTER_NAMES[base])
        elif ch.isalpha():
            words.append(ch.lower())
    return " ".join(words)


def is_syllable(word: str) -> bool:
    """A plausible Vietnamese syllable (lower-case), used for all-caps heading words like 'BÁO CÁO'."""
    return bool(_SYLLABLE_RE.fullmatch(word))


def _has_diacritic(word: str) -> bool:
    return any(not ch.isascii() for ch in word)


def read_abbreviation(token: str, dictionary: Dictionary) -> str:
    """Read an all-caps token: dictionary, then its '-', '/', '&' parts, then a Vietnamese word, else spell."""
    reading = dictionary.get(token)
    if reading is not None:
        return reading
    if "&" in token:
        return " và ".join(read_abbreviation(p, dictionary) for p in token.split("&") if p)
    parts = [p for p in re.split(r"[-/]", token) if p]
    if len(parts) > 1:
        return " ".join(read_abbreviation(p, dictionary) for p in parts)
    lower = token.lower()
    if is_syllable(lower) and (len(token) >= 3 or _has_diacritic(token)):
        return lower
    return spell(token)
