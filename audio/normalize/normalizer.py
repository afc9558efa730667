"""The normalisation pipeline: written Vietnamese in, spoken Vietnamese out, with no digits left."""

from __future__ import annotations

import re
import unicodedata

from audio.normalize.abbreviations import Dictionary, default_dictionary, read_abbreviation
from audio.normalize.dates import replace_dates, replace_times
from audio.normalize.numbers import NUMBER_RE, read_digits, read_number, read_ordinal, roman_to_int
from audio.normalize.units import UNIT_RE, read_unit

# Bump whenever the output for some input changes: it is part of the TTS cache key.
NORMALIZER_VERSION = "1"

_CAPS_PIECE = r"[A-ZĐÀ-ỸƠƯ][A-ZĐÀ-ỸƠƯa-z]*"
_CODE = rf"{_CAPS_PIECE}(?:[-/&]{_CAPS_PIECE})*"
# 42/2022/NĐ-CP, 169/KH-UBND, 04-NQ/TU, 1616/STTTT-BCVT&CNTT
DOC_NUMBER_RE = re.compile(rf"(?<![0-9./,])([0-9]+)(?:/([0-9]{{4}}))?[/-]({_CODE})(?![\w])")

_ROMAN_KEYWORDS = (
    r"quý|chương|phần|mục|khóa|khoá|giai đoạn|đợt|kỳ|tập|phụ lục|đại hội|thế kỷ|lần thứ|thứ|cấp|hạng|vùng|tiểu mục"
)
ROMAN_AFTER_KEYWORD_RE = re.compile(rf"\b({_ROMAN_KEYWORDS})(\s+)([IVXLC]+)\b", re.IGNORECASE)
ROMAN_HEADING_RE = re.compile(r"^([\s*#]*)([IVXL]+)(?=[.):]\s|[.):]?$|\s+[-–]\s)", re.MULTILINE)

ORDINAL_RE = re.compile(r"\b([Tt]hứ)\s+([0-9]{1,3})(?![0-9.,/])")

PHONE_RE = re.compile(r"(?<![0-9.,/])(\+84|0)([0-9](?:[ .-]?[0-9]){8,9})(?![0-9])")

_NUM = rf"(?:{NUMBER_RE})"
# 5-7m, 15%, 1.250.000 đồng, 3,5 km/h, 2022-2023
QUANTITY_RE = re.compile(
    rf"(?<![0-9])({_NUM})(?:\s?[-–]\s?({_NUM}))?(?:(\s?)({UNIT_RE}))?",
)
# 423/489 hồ sơ: a ratio once dates and document numbers are gone
RATIO_RE = re.compile(rf"(?<![0-9/.,])({NUMBER_RE})/({NUMBER_RE})(?![0-9/])")
HEADING_DOTTED_RE = re.compile(r"(?<![0-9])([0-9]+(?:\.[0-9]{1,2})+)(?![0-9])")

_WORD_TOKEN_RE = re.compile(r"[^\W\d_](?:[\w&]|[-/](?=[^\W\d_]))*")


def _roman_after_keyword(match: re.Match[str]) -> str:
    keyword, space, roman = match.groups()
    value = roman_to_int(roman)
    if value is None:
        return match.group(0)
    if keyword.lower().endswith("thứ"):
        return f"{keyword}{space}{read_ordinal(value)}"
    return f"{keyword}{space}{read_number(str(value))}"


def _roman_heading(match: re.Match[str]) -> str:
    value = roman_to_int(match.group(2))
    if value is None:
        return match.group(0)
    return f"{match.group(1)}{read_number(str(value))}"


def _doc_number(match: re.Match[str], dictionary: Dictionary) -> str:
    number, year, code = match.groups()
    before = match.string[: match.start()].rstrip().lower()
    words = [] if re.search(r"(?:^|\W)số$", before) else ["số"]
    words.append(read_number(number))
    if year:
        words.append(f"năm {read_number(year)}")
    words.append(read_abbreviation(code, dictionary))
    return " ".join(words)


def _phone(match: re.Match[str]) -> str:
    prefix, rest = match.groups()
    digits = re.sub(r"[^0-9]", "", rest)
    if prefix == "0" and len(digits) not in (9, 10):
        return match.group(0)
    head = "cộng tám tư" if prefix == "+84" else "không"
    return f"{head} {read_digits(digits)}"


def _quantity(match: re.Match[str]) -> str:
    first, second, space, unit = match.groups()
    spoken = read_number(first)
    if second:
        spoken += " đến " + read_number(second)
    if unit:
        reading = read_unit(unit, spaced=bool(space))
        if reading is None:
            return spoken + (space or "") + unit
        spoken += " " + reading
    return spoken


def _spaced(match: re.Match[str], spoken: str) -> str:
    """Keep spoken words apart from letters glued to the number: '4G' -> 'bốn G', 'IPv6' -> 'IPv sáu'."""
    source = match.string
    if match.start() > 0 and source[match.start() - 1].isalpha():
        spoken = " " + spoken
    if match.end() < len(source) and source[match.end()].isalpha():
        spoken += " "
    return spoken


def _caps_token(match: re.Match[str], dictionary: Dictionary) -> str:
    token = match.group(0)
    letters = [ch for ch in token if ch.isalpha()]
    if len(letters) < 2:
        return token
    if token in dictionary:
        return dictionary.get(token) or token
    if not all(ch.isupper() for ch in letters):
        # Mixed tokens: read the all-caps parts of hyphenated codes, leave ordinary words alone.
        if any(sep in token for sep in "-/&"):
            parts = re.split(r"([-/&])", token)
            return "".join(
                read_abbreviation(p, dictionary) if len(p) >= 2 and p.isupper() else p for p in parts
            ).replace("&", " và ")
        return token
    value = roman_to_int(token) if set(token) <= set("IVX") else None
    if value is not None:
        return read_number(str(value))
    return read_abbreviation(token, dictionary)


def normalize_text(text: str, *, dictionary: Dictionary | None = None) -> str:
    """Turn written Vietnamese into its spoken form: no digit and no unknown abbreviation is left."""
    if dictionary is None:
        dictionary = default_dictionary()
    text = unicodedata.normalize("NFC", text)
    text = ROMAN_HEADING_RE.sub(_roman_heading, text)
    text = ROMAN_AFTER_KEYWORD_RE.sub(_roman_after_keyword, text)
    text = DOC_NUMBER_RE.sub(lambda m: _doc_number(m, dictionary), text)
    text = replace_dates(text)
    text = replace_times(text)
    text = RATIO_RE.sub(lambda m: f"{read_number(m.group(1))} trên {read_number(m.group(2))}", text)
    text = PHONE_RE.sub(_phone, text)
    text = ORDINAL_RE.sub(lambda m: f"{m.group(1)} {read_ordinal(int(m.group(2)))}", text)
    text = HEADING_DOTTED_RE.sub(_dotted, text)
    text = QUANTITY_RE.sub(lambda m: _spaced(m, _quantity(m)), text)
    text = re.sub(r"[0-9]+", lambda m: _spaced(m, read_number(m.group(0))), text)  # anything left over
    text = text.replace("%", " phần trăm")
    text = _WORD_TOKEN_RE.sub(lambda m: _caps_token(m, dictionary), text)
    return re.sub(r"[ \t]+", " ", text).strip()


def _dotted(match: re.Match[str]) -> str:
    """'2.1' (heading numbers, '30.9' written the English way) -> 'hai chấm một'; thousands stay intact."""
    raw = match.group(1)
    if re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{3})+", raw):
        return raw
    return " chấm ".join(read_number(part) for part in raw.split("."))
