"""Vietnamese text normalisation (issue 4): exact spoken forms, the seed reports, random text, the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from audio.cli import tts_app
from audio.normalize import NORMALIZER_VERSION, Dictionary, normalize_text
from audio.normalize.abbreviations import ENV_VAR
from audio.normalize.numbers import read_int

# shared/ sits beside the repository (CI clones it so); /work/shared is where it lives on a workstation.
_SEED_DIRS = (Path(__file__).resolve().parents[3] / "shared" / "seeds", Path("/work/shared/seeds"))
SEEDS = sorted(next((d for d in _SEED_DIRS if d.is_dir()), _SEED_DIRS[0]).glob("*.txt"))

CASES = [
    # numbers: mốt, lăm, linh, tư, không trăm
    ("21", "hai mươi mốt"),
    ("15", "mười lăm"),
    ("25", "hai mươi lăm"),
    ("10", "mười"),
    ("11", "mười một"),
    ("24", "hai mươi tư"),
    ("14", "mười bốn"),
    ("104", "một trăm linh bốn"),
    ("1005", "một nghìn không trăm linh năm"),
    ("2024", "hai nghìn không trăm hai mươi tư"),
    ("1.250.000", "một triệu hai trăm năm mươi nghìn"),
    ("3.080", "ba nghìn không trăm tám mươi"),
    ("1.000.000", "một triệu"),
    ("4.025.000.000", "bốn tỷ không trăm hai mươi lăm triệu"),
    ("3,5", "ba phẩy năm"),
    ("90,05", "chín mươi phẩy không năm"),
    ("có 0 người", "có không người"),
    # money and percentages
    ("1.250.000 đồng", "một triệu hai trăm năm mươi nghìn đồng"),
    ("25.000đ", "hai mươi lăm nghìn đồng"),
    ("500 VNĐ", "năm trăm đồng"),
    ("Tổng kinh phí: 1 tỷ đồng.", "Tổng kinh phí: một tỷ đồng."),
    ("15%", "mười lăm phần trăm"),
    ("99,5%", "chín mươi chín phẩy năm phần trăm"),
    # dates
    ("15/3/2024", "ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi tư"),
    ("ngày 28/01/2022", "ngày hai mươi tám tháng một năm hai nghìn không trăm hai mươi hai"),
    ("Ngày 23/4/2018", "Ngày hai mươi ba tháng tư năm hai nghìn không trăm mười tám"),
    ("Lễ 2/9", "Lễ mùng hai tháng chín"),
    ("tháng 8/2023", "tháng tám năm hai nghìn không trăm hai mươi ba"),
    ("đạt 13/13 chỉ tiêu", "đạt mười ba trên mười ba chỉ tiêu"),
    ("423/489 hồ sơ", "bốn trăm hai mươi ba trên bốn trăm tám mươi chín hồ sơ"),
    # times
    ("7h30", "bảy giờ ba mươi phút"),
    ("17:00", "mười bảy giờ"),
    ("14 giờ 05", "mười bốn giờ năm phút"),
    ("14 giờ 05 phút", "mười bốn giờ năm phút"),
    # ranges and units
    ("5-7m", "năm đến bảy mét"),
    ("350m", "ba trăm năm mươi mét"),
    ("12 mm", "mười hai mi li mét"),
    ("3 km", "ba ki lô mét"),
    ("60 km/h", "sáu mươi ki lô mét trên giờ"),
    ("2 ha", "hai héc ta"),
    ("35°C", "ba mươi lăm độ xê"),
    ("20 kg", "hai mươi ki lô gam"),
    ("100 m2", "một trăm mét vuông"),
    ("100 m²", "một trăm mét vuông"),
    ("giai đoạn 2021-2023", "giai đoạn hai nghìn không trăm hai mươi mốt đến hai nghìn không trăm hai mươi ba"),
    # phone numbers
    ("Gọi 0912 345 678", "Gọi không chín một hai ba bốn năm sáu bảy tám"),
    ("0912345678", "không chín một hai ba bốn năm sáu bảy tám"),
    # Roman numerals and ordinals
    ("quý I", "quý một"),
    ("Chương II", "Chương hai"),
    ("II. MỤC TIÊU", "hai. mục tiêu"),
    ("IV. KIẾN NGHỊ", "bốn. kiến nghị"),
    ("lần thứ IV", "lần thứ tư"),
    ("thứ 1", "thứ nhất"),
    ("thứ 4", "thứ tư"),
    ("thứ 2", "thứ hai"),
    # document numbers
    ("42/2022/NĐ-CP", "số bốn mươi hai năm hai nghìn không trăm hai mươi hai nghị định chính phủ"),
    (
        "Nghị định số 42/2022/NĐ-CP",
        "Nghị định số bốn mươi hai năm hai nghìn không trăm hai mươi hai nghị định chính phủ",
    ),
    (
        "113/STTTT-BCVT&CNTT",
        "số một trăm mười ba sở thông tin và truyền thông bưu chính viễn thông và công nghệ thông tin",
    ),
    ("04-NQ/TU", "số bốn nghị quyết tỉnh ủy"),
    ("169/KH-UBND", "số một trăm sáu mươi chín kế hoạch ủy ban nhân dân"),
    # abbreviations
    ("UBND xã", "ủy ban nhân dân xã"),
    ("HĐND", "hội đồng nhân dân"),
    ("TTHC", "thủ tục hành chính"),
    ("CĐS", "chuyển đổi số"),
    ("BCĐ", "ban chỉ đạo"),
    ("CBCC", "cán bộ công chức"),
    ("CNTT", "công nghệ thông tin"),
    ("TT-BTTTT", "thông tư bộ thông tin và truyền thông"),
    ("STTTT", "sở thông tin và truyền thông"),
    ("BÁO CÁO KẾT QUẢ", "báo cáo kết quả"),
    ("XYZQ", "ích i dài dét quy"),
    ("4G/5G", "bốn G/năm G"),
]


@pytest.mark.parametrize(("written", "spoken"), CASES)
def test_exact_spoken_form(written: str, spoken: str) -> None:
    assert normalize_text(written) == spoken


def test_read_int_table() -> None:
    assert read_int(0) == "không"
    assert read_int(101) == "một trăm linh một"
    assert read_int(1_000_001) == "một triệu không trăm linh một"
    assert read_int(2_000_000_000) == "hai tỷ"


def test_version_is_a_string() -> None:
    assert isinstance(NORMALIZER_VERSION, str) and NORMALIZER_VERSION


def test_dictionary_extension_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "huyen.tsv"
    extra.write_text("# từ điển riêng của huyện\nHTXNN\thợp tác xã nông nghiệp\nUBND\tủy ban\n", encoding="utf-8")
    dictionary = Dictionary.load([extra])
    assert normalize_text("HTXNN và UBND", dictionary=dictionary) == "hợp tác xã nông nghiệp và ủy ban"
    monkeypatch.setenv(ENV_VAR, str(extra))
    assert normalize_text("HTXNN", dictionary=Dictionary.load()) == "hợp tác xã nông nghiệp"


def test_dictionary_rejects_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("UBND ủy ban nhân dân\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad dictionary line"):
        Dictionary.load([bad])


_CAPS_RE = re.compile(r"[^\W\d_](?:[\w&]|[-/](?=[^\W\d_]))*")


def _unknown_caps(spoken: str, dictionary: Dictionary) -> list[str]:
    found = []
    for token in _CAPS_RE.findall(spoken):
        letters = [ch for ch in token if ch.isalpha()]
        if len(letters) >= 2 and all(ch.isupper() for ch in letters) and token not in dictionary:
            found.append(token)
    return found


@pytest.mark.skipif(not SEEDS, reason="no seed reports in shared/seeds")
def test_seed_lines_leave_no_digit_and_no_unknown_abbreviation() -> None:
    dictionary = Dictionary.load()
    bad = []
    for seed in SEEDS:
        for line in seed.read_text(encoding="utf-8").splitlines():
            spoken = normalize_text(line, dictionary=dictionary)
            if re.search(r"[0-9]", spoken) or _unknown_caps(spoken, dictionary):
                bad.append((seed.name, line, spoken))
    assert not bad, bad[:5]


_PIECES = st.one_of(
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.sampled_from(["xã", "ngày", "tháng", "năm", "thứ", "quý", "giờ", "số", "UBND", "km", "m", "%", "đ", "IV"]),
    st.sampled_from(list("./,-:;%°²&() hgmđ")),
    st.text(alphabet="abcđêôơưăâÁÀẢÃẠXYZIVQWĐ", min_size=1, max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=25).map("".join))
def test_random_text_never_raises_and_leaves_no_digit(text: str) -> None:
    assert not re.search(r"[0-9]", normalize_text(text))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.just(" ")), max_size=25).map(" ".join))
def test_random_spaced_text_leaves_no_digit(text: str) -> None:
    assert not re.search(r"[0-9]", normalize_text(text))


def test_cli_normalize_keeps_line_count() -> None:
    lines = ["UBND xã thông báo", "", "Ngày 15/3/2024 lúc 7h30", "   ", "Kinh phí 1.250.000 đồng", "Hết"]
    result = CliRunner().invoke(tts_app, ["normalize"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert len(out) == len(lines)
    assert out[0] == "ủy ban nhân dân xã thông báo"
    assert out[1] == "" and out[3] == ""
    assert out[2] == "Ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi tư lúc bảy giờ ba mươi phút"
    assert not re.search(r"[0-9]", result.stdout)
