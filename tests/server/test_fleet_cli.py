"""``bcast fleet import``: migrates, imports, summarises; a bad file exits 2 and changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from broadcast_server.cli import app

runner = CliRunner()


def _import(path: Path, database_url: str):
    return runner.invoke(app, ["fleet", "import", str(path), "--database-url", database_url])


def test_import_prints_a_summary_and_is_idempotent(database_url, hon_quan_csv) -> None:
    first = _import(hon_quan_csv, database_url)
    assert first.exit_code == 0, first.output
    assert "Đã nhập 202 cụm loa" in first.stdout
    assert "cụm loa mới: 202" in first.stdout
    assert "đơn vị hành chính mới: 217" in first.stdout

    second = _import(hon_quan_csv, database_url)
    assert second.exit_code == 0, second.output
    assert "cụm loa mới: 0" in second.stdout
    assert "cụm loa không đổi: 202" in second.stdout


def test_bad_row_exits_non_zero_names_the_line_and_changes_nothing(
    database_url, hon_quan_csv, snapshot, tmp_path
) -> None:
    assert _import(hon_quan_csv, database_url).exit_code == 0
    before = snapshot(database_url)

    lines = hon_quan_csv.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("106.63315", "106.7")  # would update a cluster
    lines.append("hon-quan-moi-001,Bình Phước,Hớn Quản,Xã Mới,Thôn 1,11.6,106.6")  # would add one
    cells = lines[56].split(",")
    cells[5] = "5x"  # not a number
    lines[56] = ",".join(cells)
    bad = tmp_path / "hon-quan-sai.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = _import(bad, database_url)
    assert result.exit_code == 2
    assert "dòng 57: tọa độ lat không hợp lệ: '5x'" in result.stderr
    assert "1 lỗi" in result.stderr
    assert "Đã nhập" not in result.stdout
    assert snapshot(database_url) == before


def test_bad_file_does_not_even_create_the_database(tmp_path) -> None:
    bad = tmp_path / "fleet.csv"
    bad.write_text("\ufeffcluster_id,province,district,commune,village,lat,lon\nc-1,T,H,X,V,91,0\n,T,H,X,V,1,1\n")
    database = tmp_path / "new.sqlite3"
    result = _import(bad, f"sqlite:///{database}")
    assert result.exit_code == 2
    assert "dòng 2: tọa độ lat ngoài khoảng [-90, 90]: 91" in result.stderr
    assert "dòng 3: thiếu cluster_id" in result.stderr
    assert not database.exists()


def test_unusable_database_exits_1(hon_quan_csv) -> None:
    result = _import(hon_quan_csv, "not a url")
    assert result.exit_code == 1
    assert "Không dùng được cơ sở dữ liệu" in result.stderr


def test_database_url_defaults_to_settings(monkeypatch, tmp_path, hon_quan_csv) -> None:
    database = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv("BCAST_DATABASE_URL", f"sqlite:///{database}")
    result = runner.invoke(app, ["fleet", "import", str(hon_quan_csv)])
    assert result.exit_code == 0, result.output
    assert database.exists()


def test_cli_module_imports_only_typer() -> None:
    code = (
        "import sys, broadcast_server.cli; "
        "heavy = {'sqlalchemy', 'sqlmodel', 'alembic', 'pydantic_settings', 'rich', 'psycopg'}; "
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
