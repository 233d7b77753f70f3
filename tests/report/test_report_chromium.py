"""The HTML report in headless Chromium: no console message, no script, nothing loaded."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from evoaug.report import write_report

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
XSS = "<script>alert(1)</script>"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium); the HTML report is "
    "checked in a headless browser only where it is",
)


def run_chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Render ``url`` headless with network features off; page console messages go to stderr."""
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_lines(stderr: str) -> list[str]:
    """Chromium's log lines that carry a page console message (errors, CSP violations)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_chromium_detects_console_errors(tmp_path):  # type: ignore[no-untyped-def]
    """The check below can fail: a page with a script error and a blocked image is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        'content="default-src \'none\'"></head><body><img src="https://example.invalid/x.png">'
        "</body></html>"
    )
    result = run_chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_lines(result.stderr), result.stderr[-2000:]


def test_report_renders_without_console_errors(rt, tmp_path):  # type: ignore[no-untyped-def]
    run_dir = rt.run(group_names=("majority", XSS), accuracy=(0.9, 0.7))
    html_path, _, _ = write_report(run_dir, n_bootstrap=100)
    result = run_chromium(html_path.as_uri(), tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_lines(result.stderr) == []
    dom = result.stdout
    assert "evoaug fairness report" in dom
    assert "<script" not in dom.lower()  # the group name stayed text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert (
        dom.count("data:image/png;base64,") == 5
    )  # groups, Pareto, hypervolume, timeline, samples
    screenshot = tmp_path / "report.png"
    result = run_chromium(
        html_path.as_uri(), tmp_path, f"--screenshot={screenshot}", "--window-size=1200,3000"
    )
    assert result.returncode == 0 and console_lines(result.stderr) == []
    assert screenshot.stat().st_size > 10_000
