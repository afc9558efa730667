"""Write a quarterly report as CSV (for machines), XLSX (native charts) and a printable HTML page (SVG)."""

from __future__ import annotations

import csv
from pathlib import Path

from jinja2 import Environment, select_autoescape

from broadcast_server.reports.numbers import vn_float, vn_int, vn_percent
from broadcast_server.reports.quarterly import QuarterlyReport
from broadcast_server.reports.svg import bar_chart, line_chart
from broadcast_server.statistics.periods import LOCAL_TZ, local_text

CSV_FIELDS = (
    "unit_id",
    "commune",
    "clusters",
    "broadcasts",
    "bulletins_played",
    "broadcast_seconds",
    "clusters_played",
    "clusters_targeted",
    "played_share",
    "emergency_played",
    "delivered",
    "late",
    "failed",
    "missed",
    "rejected",
    "stopped",
    "cluster_seconds",
)
CATEGORY_PREFIX = "category:"


def write_quarterly(report: QuarterlyReport, out_dir: Path) -> list[Path]:
    """Write every format into ``out_dir`` (created if needed); return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / report.file_stem
    return [
        write_csv(report, stem.with_suffix(".csv")),
        write_online_csv(report, stem.parent / f"{stem.name}-truc-tuyen.csv"),
        write_xlsx(report, stem.with_suffix(".xlsx")),
        write_html(report, stem.with_suffix(".html")),
    ]


# ------------------------------------------------------------------------------------------- CSV


def write_csv(report: QuarterlyReport, path: Path) -> Path:
    """One row per commune; seconds with millisecond precision; categories as ``category:<name>`` columns."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CSV_FIELDS, *(CATEGORY_PREFIX + c for c in report.categories)])
        for row in report.communes:
            values = row.as_dict()
            values["commune"] = row.name
            values["played_share"] = round(row.played_share, 6)
            writer.writerow([values[f] for f in CSV_FIELDS] + [row.categories.get(c, 0) for c in report.categories])
    return path


def write_online_csv(report: QuarterlyReport, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["day", "online_share"])
        for day, share in report.online:
            writer.writerow([day.isoformat(), "" if share is None else round(share, 6)])
    return path


# ------------------------------------------------------------------------------------------- XLSX


def write_xlsx(report: QuarterlyReport, path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, LineChart, Reference
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Báo cáo"
    bold = Font(bold=True)
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    sheet["A1"] = report.issuer
    sheet["A1"].font = bold
    sheet["A2"] = f"BÁO CÁO KẾT QUẢ HOẠT ĐỘNG HỆ THỐNG TRUYỀN THANH CƠ SỞ {report.quarter.title.upper()}"
    sheet["A2"].font = Font(bold=True, size=13)
    sheet["A3"] = f"Địa bàn: {report.area}. Lập lúc {local_text(report.generated_at)} (giờ Việt Nam)."
    headers = [
        "Xã / thị trấn",
        "Số cụm loa",
        "Số lượt tin, bài đã phát",
        "Thời lượng phát (giờ)",
        "Lượt cụm loa đã phát",
        "Lượt cụm loa được gửi",
        "Tỷ lệ cụm loa phát",
        "Tin khẩn cấp",
        *(f"Chuyên mục “{report.category_label(c)}”" for c in report.categories),
    ]
    header_row = 5
    for column, title in enumerate(headers, start=1):
        cell = sheet.cell(row=header_row, column=column, value=title)
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        cell.fill = PatternFill("solid", fgColor="DDE7F3")
        cell.border = border
    rows = [*report.communes, report.total]
    for offset, row in enumerate(rows, start=1):
        values = [
            row.name,
            row.clusters,
            row.bulletins_played,
            round(row.broadcast_seconds / 3600, 2),
            row.clusters_played,
            row.clusters_targeted,
            row.played_share,
            row.emergency_played,
            *(row.categories.get(c, 0) for c in report.categories),
        ]
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(row=header_row + offset, column=column, value=value)
            cell.border = border
            if column == 4:
                cell.number_format = "#,##0.00"
            elif column == 7:
                cell.number_format = "0.0%"
            if row is report.total:
                cell.font = bold
    sheet.column_dimensions["A"].width = 28
    for column in range(2, len(headers) + 1):
        sheet.column_dimensions[get_column_letter(column)].width = 14
    sheet.row_dimensions[header_row].height = 48
    first, last = header_row + 1, header_row + len(report.communes)
    if report.communes:
        chart = BarChart()
        chart.type = "bar"
        chart.title = "Thời lượng phát theo xã (giờ)"
        chart.y_axis.title = "giờ"
        chart.legend = None
        chart.add_data(Reference(sheet, min_col=4, min_row=header_row, max_row=last), titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=1, min_row=first, max_row=last))
        chart.height = max(7.5, 0.6 * len(report.communes))
        chart.width = 18
        sheet.add_chart(chart, f"A{last + 4}")

    online = workbook.create_sheet("Trực tuyến")
    online["A1"], online["B1"] = "Ngày", "Tỷ lệ cụm loa trực tuyến"
    online["A1"].font = online["B1"].font = bold
    for i, (day, share) in enumerate(report.online, start=2):
        online.cell(row=i, column=1, value=day).number_format = "dd/mm/yyyy"
        online.cell(row=i, column=2, value=share).number_format = "0.0%"
    online.column_dimensions["A"].width = 14
    online.column_dimensions["B"].width = 26
    if report.online:
        line = LineChart()
        line.title = "Tỷ lệ cụm loa trực tuyến theo ngày"
        line.y_axis.scaling.min, line.y_axis.scaling.max = 0, 1
        line.y_axis.number_format = "0%"
        line.legend = None
        line.add_data(Reference(online, min_col=2, min_row=1, max_row=len(report.online) + 1), titles_from_data=True)
        line.set_categories(Reference(online, min_col=1, min_row=2, max_row=len(report.online) + 1))
        line.width, line.height = 22, 9
        online.add_chart(line, "D2")
    workbook.properties.title = f"Báo cáo truyền thanh cơ sở {report.quarter.title}"
    workbook.properties.creator = "bcast"
    workbook.save(path)
    return path


# ------------------------------------------------------------------------------------------- HTML

_TEMPLATE = """<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Báo cáo truyền thanh cơ sở {{ r.quarter.title }}</title>
<style>
  @page { size: A4; margin: 18mm 15mm; }
  body { font-family: "Times New Roman", "DejaVu Serif", serif; font-size: 13pt; color: #000; max-width: 190mm;
         margin: 0 auto; padding: 8mm 0; line-height: 1.4; }
  .head { display: flex; justify-content: space-between; text-align: center; }
  .head div { width: 48%; }
  .upper { font-weight: bold; text-transform: uppercase; }
  .motto { font-weight: bold; text-decoration: underline; }
  .date { text-align: right; font-style: italic; margin-top: 6mm; }
  h1 { text-align: center; font-size: 15pt; margin: 8mm 0 0; }
  h1 + p { text-align: center; font-weight: bold; margin-top: 2mm; }
  h2 { font-size: 13pt; margin-top: 7mm; }
  table { border-collapse: collapse; width: 100%; font-size: 10.5pt; page-break-inside: auto; }
  th, td { border: 1px solid #555; padding: 3px 5px; }
  th { background: #e8eef6; }
  td.n { text-align: right; white-space: nowrap; }
  tr.total td { font-weight: bold; }
  tr { page-break-inside: avoid; }
  figure { margin: 6mm 0; page-break-inside: avoid; }
  figcaption { text-align: center; font-style: italic; font-size: 11pt; }
  .note { font-size: 10.5pt; color: #333; }
  @media print { body { padding: 0; } }
</style>
</head>
<body>
<div class="head">
  <div><div class="upper">{{ r.issuer }}</div><div>Hệ thống truyền thanh cơ sở</div></div>
  <div><div class="upper">Cộng hòa xã hội chủ nghĩa Việt Nam</div>
    <div class="motto">Độc lập - Tự do - Hạnh phúc</div></div>
</div>
<p class="date">ngày {{ made.day }} tháng {{ made.month }} năm {{ made.year }}</p>
<h1>BÁO CÁO</h1>
<p>Kết quả hoạt động hệ thống truyền thanh cơ sở {{ r.quarter.title }}<br>trên địa bàn {{ r.area }}</p>

<h2>I. KẾT QUẢ PHÁT THANH</h2>
<p>Trong {{ r.quarter.title }}, hệ thống truyền thanh cơ sở trên địa bàn {{ r.area }} đã phát
{{ vn_int(t.bulletins_played) }} lượt tin, bài tại {{ vn_int(active) }}/{{ vn_int(r.communes|length) }} xã, thị trấn,
với tổng thời lượng {{ vn_float(t.broadcast_seconds / 3600) }} giờ{% if categories %}; trong đó
{% for c, n in categories %}{{ vn_int(n) }} lượt chuyên mục “{{ c }}”{{ "; " if not loop.last else "" }}
{%- endfor %}{% endif %}.
Có {{ vn_int(t.emergency_played) }} lượt tin khẩn cấp. {{ vn_int(t.clusters) }} cụm loa đã nhận
{{ vn_int(t.clusters_targeted) }} lượt gửi tin, bài và phát trọn vẹn {{ vn_int(t.clusters_played) }} lượt
(đạt {{ vn_percent(t.played_share) }}).</p>

<table id="communes">
<thead><tr><th>STT</th><th>Xã / thị trấn</th><th>Số cụm loa</th><th>Lượt tin, bài đã phát</th>
<th>Thời lượng (giờ)</th><th>Tỷ lệ cụm loa phát</th><th>Tin khẩn cấp</th>
{% for c in r.categories %}<th>“{{ r.category_label(c) }}”</th>{% endfor %}</tr></thead>
<tbody>
{% for row in r.communes %}<tr><td class="n">{{ loop.index }}</td><td>{{ row.name }}</td>
<td class="n">{{ vn_int(row.clusters) }}</td><td class="n">{{ vn_int(row.bulletins_played) }}</td>
<td class="n">{{ vn_float(row.broadcast_seconds / 3600) }}</td><td class="n">{{ vn_percent(row.played_share) }}</td>
<td class="n">{{ vn_int(row.emergency_played) }}</td>
{% for c in r.categories %}<td class="n">{{ vn_int(row.categories.get(c, 0)) }}</td>{% endfor %}</tr>
{% endfor %}<tr class="total"><td></td><td>{{ t.name }}</td><td class="n">{{ vn_int(t.clusters) }}</td>
<td class="n">{{ vn_int(t.bulletins_played) }}</td><td class="n">{{ vn_float(t.broadcast_seconds / 3600) }}</td>
<td class="n">{{ vn_percent(t.played_share) }}</td><td class="n">{{ vn_int(t.emergency_played) }}</td>
{% for c in r.categories %}<td class="n">{{ vn_int(t.categories.get(c, 0)) }}</td>{% endfor %}</tr>
</tbody>
</table>
<p class="note">Lượt tin, bài: số lượt phát có ít nhất một cụm loa của xã phát trọn vẹn. Thời lượng: thời gian phát
sóng của xã (mỗi lượt tính một lần). Tỷ lệ cụm loa phát: lượt cụm loa phát trọn vẹn trên lượt cụm loa được gửi.</p>

<figure>{{ hours_svg|safe }}<figcaption>Biểu đồ 1. Thời lượng phát theo xã, thị trấn (giờ)</figcaption></figure>

<h2>II. TÌNH TRẠNG HOẠT ĐỘNG CỦA CỤM LOA</h2>
<p>Tỷ lệ cụm loa trực tuyến bình quân trong kỳ: {{ vn_percent(r.online_average) }}.
Số lượt cụm loa không phát được: {{ vn_int(t.failed) }} lỗi, {{ vn_int(t.missed) }} quá giờ,
{{ vn_int(t.rejected) }} bị từ chối (lệnh hết hạn), {{ vn_int(t.stopped) }} bị dừng giữa chừng.</p>
<figure>{{ online_svg|safe }}<figcaption>Biểu đồ 2. Tỷ lệ cụm loa trực tuyến theo ngày</figcaption></figure>

<p class="note">Số liệu do hệ thống bcast tổng hợp lúc {{ generated }} (giờ Việt Nam) từ báo cáo của các cụm loa.</p>
<div class="head" style="margin-top:10mm">
  <div style="text-align:left"><b><i>Nơi nhận:</i></b><br>- Như trên;<br>- Lưu: VT.</div>
  <div><b>NGƯỜI LẬP BÁO CÁO</b><br><br><br><br></div>
</div>
</body>
</html>
"""


def render_html(report: QuarterlyReport) -> str:
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    environment.globals.update(vn_int=vn_int, vn_float=vn_float, vn_percent=vn_percent)
    t = report.total
    return environment.from_string(_TEMPLATE).render(
        r=report,
        t=t,
        made=report.generated_at.astimezone(LOCAL_TZ),
        generated=local_text(report.generated_at),
        active=sum(1 for c in report.communes if c.bulletins_played),
        categories=[(report.category_label(c), t.categories[c]) for c in report.categories if c],
        hours_svg=bar_chart(
            [c.name for c in report.communes],
            [c.broadcast_seconds / 3600 for c in report.communes],
            title="Thời lượng phát theo xã (giờ)",
            unit="giờ",
            chart_id="chart-hours",
        ),
        online_svg=line_chart(report.online, title="Tỷ lệ cụm loa trực tuyến theo ngày", chart_id="chart-online"),
    )


def write_html(report: QuarterlyReport, path: Path) -> Path:
    path.write_text(render_html(report), encoding="utf-8")
    return path
