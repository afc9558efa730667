"""`bcast tts` and `bcast audio` sub-commands.

Only Typer is imported at module level; the audio modules load inside the commands so that the root
`bcast` command starts fast on a receiver box.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from audio.render import Progress as RenderProgress
    from audio.render import ProgressCallback
    from audio.speech import CacheChoice
    from audio.tts.engine import TtsEngine

tts_app = typer.Typer(help="Chuyển văn bản thành giọng nói (tiếng Việt).", no_args_is_help=True)
audio_app = typer.Typer(
    help="Xử lý âm thanh để phát trên loa: chuẩn hoá độ lớn, cắt khoảng lặng.", no_args_is_help=True
)

# Exit code of every refused or failed command (Click uses 2 for usage errors too).
EXIT_ERROR = 2

# Vietnamese headline per exception class name; the first match along the class's MRO wins.
_MESSAGES: dict[str, str] = {
    "MissingInput": "Không tìm thấy tệp đầu vào",
    "NotAudio": "Tệp không chứa âm thanh hoặc không đọc được",
    "TooLarge": "Tệp quá lớn",
    "TooLong": "Âm thanh quá dài",
    "SilentAudio": "Âm thanh im lặng hoặc quá nhỏ, không có gì để phát",
    "UnsupportedFormat": "Định dạng đầu ra không được hỗ trợ",
    "LoudnessNotReached": "Không đạt được độ lớn âm thanh mục tiêu",
    "ToolError": "Lỗi khi chạy ffmpeg/ffprobe",
    "AudioError": "Lỗi xử lý âm thanh",
    "EngineUnavailable": "Bộ tổng hợp giọng nói chưa sẵn sàng trên máy này",
    "TtsError": "Lỗi tổng hợp giọng nói",
    "ValueError": "Tham số không hợp lệ",
    "OSError": "Lỗi đọc/ghi tệp",
}


@contextlib.contextmanager
def _friendly_errors() -> Iterator[None]:
    """Turn expected failures into one Vietnamese line on stderr and exit code 2, without a traceback."""
    from audio.errors import AudioError
    from audio.tts.engine import TtsError

    try:
        yield
    except (AudioError, TtsError, ValueError, OSError) as exc:
        headline = next(
            (_MESSAGES[cls.__name__] for cls in type(exc).__mro__ if cls.__name__ in _MESSAGES),
            "Lỗi",
        )
        typer.echo(f"Lỗi: {headline}. Chi tiết: {exc}", err=True)
        hint = getattr(exc, "hint", "")
        if hint:
            typer.echo(f"Cách khắc phục: {hint}", err=True)
        raise typer.Exit(code=EXIT_ERROR) from None


def _format_for(path: Path) -> str | None:
    """Output format implied by a file name: mp3, opus, wav (raw TTS) or None if unknown."""
    return {".mp3": "mp3", ".opus": "opus", ".ogg": "opus", ".wav": "wav"}.get(path.suffix.lower())


@tts_app.callback()
def _tts() -> None:
    """Chuyển văn bản thành giọng nói (tiếng Việt)."""


@tts_app.command("say")
def say(
    text: Annotated[str, typer.Argument(help="Văn bản cần đọc.")],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Tệp kết quả: .mp3/.opus (đã chuẩn hoá độ lớn) hoặc .wav (nguyên bản)."),
    ],
    voice: Annotated[
        str | None,
        typer.Option(
            "--voice",
            help="Giọng đọc. espeak-ng: vi (miền Bắc), vi-vn-x-central (miền Trung), vi-vn-x-south (miền Nam). "
            "Mặc định: giọng mặc định của bộ đọc.",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Bộ tổng hợp giọng nói: espeak-ng, piper, viettts, gtts (mặc định: biến BCAST_TTS_ENGINE "
            "hoặc espeak-ng).",
        ),
    ] = None,
    rate: Annotated[int | None, typer.Option("--rate", help="Tốc độ đọc (từ/phút).")] = None,
    target_lufs: Annotated[float, typer.Option("--target-lufs", help="Độ lớn mục tiêu (LUFS).")] = -16.0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Không dùng bộ nhớ đệm giọng đọc.")] = False,
) -> None:
    """Đọc văn bản thành tệp âm thanh sẵn sàng phát trên loa."""
    with _friendly_errors():
        from audio.errors import UnsupportedFormat
        from audio.render import render
        from audio.speech import text_to_wav
        from audio.tts import get_engine
        from audio.tts.engine import require_available

        fmt = _format_for(output)
        if fmt is None:
            raise UnsupportedFormat(f"cannot tell the format from {output.name!r}; use .mp3, .opus or .wav")
        tts = get_engine(engine)
        require_available(tts)
        cache = False if no_cache else None
        output.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "wav":
            _say_wav(text, output, voice=voice, engine=tts, rate=rate, cache=cache)
            return
        with tempfile.TemporaryDirectory(prefix="bcast-tts-") as work:
            wav = text_to_wav(text, Path(work) / "speech.wav", voice=voice, engine=tts, rate_wpm=rate, cache=cache)
            result = render(wav, output, target_lufs=target_lufs, fmt=fmt)
        typer.echo(f"Đã ghi: {result.path}")
        typer.echo(f"Bộ đọc: {tts.name}, giọng {voice or tts.default_voice}")
        typer.echo(f"Thời lượng: {result.duration_s:.2f} s")
        typer.echo(f"Độ lớn: {result.integrated_lufs:.1f} LUFS, đỉnh thực {result.true_peak_dbtp:.1f} dBTP")


@tts_app.command("engines")
def engines_command() -> None:
    """Liệt kê các bộ tổng hợp giọng nói và cho biết bộ nào dùng được trên máy này."""
    with _friendly_errors():
        from audio.tts import configured_engine, get_engine, known_engines

        default = configured_engine()
        for name in known_engines():
            engine = get_engine(name)
            state = engine.available()
            mark = "sẵn sàng" if state.ok else "chưa dùng được"
            star = " (mặc định)" if name == default else ""
            typer.echo(f"{name}{star}: {mark} — {state.reason}")
            if state.ok:
                voices = ", ".join(f"{v} ({label})" for v, label in engine.voices().items())
                typer.echo(f"    giọng: {voices}")
            elif state.hint:
                typer.echo(f"    {state.hint}")


@tts_app.command("normalize")
def normalize_command() -> None:
    """Đọc các dòng từ stdin, in dạng đọc thành lời của từng dòng (giữ nguyên số dòng)."""
    import sys

    with _friendly_errors():
        from audio.normalize import normalize_text

        for line in sys.stdin.read().splitlines():
            typer.echo(normalize_text(line) if line.strip() else "")


def _say_wav(
    text: str, output: Path, *, voice: str | None, engine: "TtsEngine", rate: int | None, cache: "CacheChoice"
) -> None:
    """Write the engine's own WAV (no loudness processing) atomically and report its measured loudness."""
    from audio.measure import measure_loudness
    from audio.speech import text_to_wav

    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part.wav", dir=output.parent)
    os.close(fd)
    staging = Path(name)
    try:
        text_to_wav(text, staging, voice=voice, engine=engine, rate_wpm=rate, cache=cache)
        loudness = measure_loudness(staging)
        os.chmod(staging, 0o644)
        os.replace(staging, output)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    typer.echo(f"Đã ghi: {output} (WAV nguyên bản, chưa chuẩn hoá độ lớn)")
    typer.echo(f"Thời lượng: {loudness.duration_s:.2f} s")
    typer.echo(f"Độ lớn: {loudness.integrated_lufs:.1f} LUFS, đỉnh thực {loudness.true_peak_dbtp:.1f} dBTP")


@audio_app.callback()
def _audio() -> None:
    """Xử lý âm thanh để phát trên loa."""


_STAGE_LABELS = {
    "scan": "Dò khoảng lặng",
    "analyse": "Đo độ lớn",
    "encode": "Mã hoá",
    "verify": "Kiểm tra độ lớn",
}
_PART_LABELS = {"intro": "nhạc mở đầu", "main": "bản tin", "outro": "nhạc kết thúc"}


@contextlib.contextmanager
def _render_progress(enabled: bool) -> Iterator["ProgressCallback | None"]:
    """Yield a `render` progress callback that drives a Rich progress display on stderr (or does nothing)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    tasks: dict[tuple[str, int, str], TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>6.1f}/{task.total:.1f} s"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:

        def update(report: "RenderProgress") -> None:
            stage, attempt, part = report.stage, report.attempt, report.part
            key = (stage, attempt, part)
            total = max(report.total_s, 0.001)
            if key not in tasks:
                label = _STAGE_LABELS.get(stage, stage)
                if part:
                    label += f" ({_PART_LABELS.get(part, part)})"
                if attempt > 1:
                    label += f", lần {attempt}"
                tasks[key] = progress.add_task(label, total=total)
            progress.update(tasks[key], completed=min(report.done_s, total), total=total)

        yield update


@audio_app.command("render")
def render_command(
    input: Annotated[Path, typer.Argument(help="Tệp âm thanh đầu vào (mp3, wav, m4a, ogg, opus, flac, amr, 3gp...).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Tệp kết quả.")],
    target_lufs: Annotated[float, typer.Option("--target-lufs", help="Độ lớn mục tiêu (LUFS).")] = -16.0,
    true_peak: Annotated[float, typer.Option("--true-peak", help="Giới hạn đỉnh thực (dBTP).")] = -1.5,
    fmt: Annotated[str, typer.Option("--format", help="Định dạng đầu ra: mp3 hoặc opus.")] = "mp3",
    no_trim: Annotated[bool, typer.Option("--no-trim", help="Không cắt khoảng lặng đầu/cuối.")] = False,
    intro: Annotated[Path | None, typer.Option("--intro", help="Nhạc hiệu phát trước bản tin.")] = None,
    outro: Annotated[Path | None, typer.Option("--outro", help="Nhạc hiệu phát sau bản tin.")] = None,
    show_progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Hiện tiến độ (mặc định: khi chạy trong terminal)."),
    ] = None,
) -> None:
    """Chuẩn hoá một tệp âm thanh: đơn kênh, cắt khoảng lặng, độ lớn EBU R128, giới hạn đỉnh."""
    import sys

    with _friendly_errors():
        from audio.render import render

        enabled = sys.stderr.isatty() if show_progress is None else show_progress
        with _render_progress(enabled) as on_progress:
            result = render(
                input,
                output,
                target_lufs=target_lufs,
                true_peak_db=true_peak,
                fmt=fmt,
                trim_silence=not no_trim,
                intro=intro,
                outro=outro,
                on_progress=on_progress,
            )
        typer.echo(f"Đã ghi: {result.path}")
        typer.echo(f"Định dạng: {result.format}")
        typer.echo(f"Kích thước: {result.size_bytes} byte")
        typer.echo(f"SHA-256: {result.sha256}")
        typer.echo(f"Thời lượng: {result.duration_s:.2f} s")
        typer.echo(f"Độ lớn: {result.integrated_lufs:.1f} LUFS")
        typer.echo(f"Đỉnh thực: {result.true_peak_dbtp:.1f} dBTP")
