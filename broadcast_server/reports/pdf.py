"""PDF through LibreOffice (headless), when it is installed: ``soffice --convert-to pdf``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


class PdfError(RuntimeError):
    """LibreOffice is missing or could not convert the file (message in Vietnamese)."""


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def xlsx_to_pdf(source: Path, out_dir: Path, timeout_s: float = 180) -> Path:
    program = soffice()
    if program is None:
        raise PdfError("chưa cài LibreOffice (soffice).")
    with tempfile.TemporaryDirectory(prefix="bcast-lo-") as profile:
        try:
            subprocess.run(
                [
                    program,
                    f"-env:UserInstallation=file://{profile}",
                    "--headless",
                    "--convert-to",
                    "pdf",
                    "--outdir",
                    str(out_dir),
                    str(source),
                ],
                check=True,
                capture_output=True,
                timeout=timeout_s,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise PdfError(f"LibreOffice không chuyển được {source.name}: {exc}") from None
    target = out_dir / (source.stem + ".pdf")
    if not target.is_file():
        raise PdfError(f"LibreOffice không tạo ra {target.name}.")
    return target
