"""Writing files: nothing routecalc did not write is replaced without --force (symlinks included, dangling ones
too), an interrupted write can be re-run without --force, and no temp file is ever left behind."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from routecalc import outputs
from routecalc.cli import app
from routecalc.errors import OutputExistsError, RoutecalcError
from routecalc.outputs import MANIFEST, TMP_SUFFIX, check_new_file, write_files
from tests.conftest import WORKSHEETS

SUPPORT = WORKSHEETS / "support-triage.yaml"
ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
FILES = {"a.txt": "alpha v1\n", "b.txt": "beta v1\n", "c.png": b"\x89PNG v1"}
NEW = {"a.txt": "alpha v2\n", "b.txt": "beta v2\n", "c.png": b"\x89PNG v2"}


def flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps at the terminal width


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((TMP_SUFFIX, ".tmp")))


def manifest(directory: Path) -> dict:
    return json.loads((directory / MANIFEST).read_text())


def sha(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Single files (-o)


def test_dangling_symlink_at_out_is_refused_like_a_foreign_file(tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    out.symlink_to(tmp_path / "nowhere.yaml")
    res = runner.invoke(app, ["export", str(SUPPORT), "-t", "json", "-p", "tiered", "-o", str(out), "-n", "1000"])
    assert res.exit_code == 3, res.output
    assert "a symlink to nothing" in flat(res.stderr)
    assert out.is_symlink() and not (tmp_path / "nowhere.yaml").exists()
    res = runner.invoke(
        app, ["export", str(SUPPORT), "-t", "json", "-p", "tiered", "-o", str(out), "-n", "1000", "--force"]
    )
    assert res.exit_code == 0 and not out.is_symlink() and out.is_file()
    assert not (tmp_path / "nowhere.yaml").exists()  # the link was replaced, not followed


@pytest.mark.parametrize("kind", ["symlink-to-file", "fifo", "file"])
def test_anything_at_out_is_refused_without_force(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "schema.json"
    if kind == "symlink-to-file":
        (tmp_path / "mine.json").write_text("{}")
        out.symlink_to(tmp_path / "mine.json")
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        out.write_text("{}")
    with pytest.raises(OutputExistsError):
        check_new_file(out, force=False)
    assert runner.invoke(app, ["schema", "-o", str(out)]).exit_code == 3


def test_directory_at_out_is_refused_even_with_force(tmp_path: Path) -> None:
    res = runner.invoke(app, ["schema", "-o", str(tmp_path), "--force"])
    assert res.exit_code == 3 and "is a directory" in flat(res.stderr)


# ---------------------------------------------------------------------------------------------------------
# Report directories


@pytest.mark.parametrize("kind", ["dangling-symlink", "file", "symlink-to-file"])
def test_report_directory_path_itself_is_checked(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "r"
    if kind == "dangling-symlink":
        out.symlink_to(tmp_path / "nowhere")
    elif kind == "file":
        out.write_text("x")
    else:
        (tmp_path / "f").write_text("x")
        out.symlink_to(tmp_path / "f")
    with pytest.raises(OutputExistsError, match="exists and is not a directory"):
        write_files(out, FILES)
    assert not (tmp_path / "nowhere").exists()


def test_symlink_to_a_directory_is_written_into(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "r").symlink_to(tmp_path / "real")
    write_files(tmp_path / "r", FILES)
    assert (tmp_path / "real" / "a.txt").read_text() == "alpha v1\n"


@pytest.mark.parametrize("kind", ["symlink-to-ours", "dangling-symlink", "fifo", "directory"])
def test_entries_that_are_not_our_regular_files_are_refused(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "r"
    write_files(out, FILES)
    target = out / "a.txt"
    target.unlink()
    if kind == "symlink-to-ours":  # same bytes as routecalc wrote, but a link: replacing it would break the link
        (tmp_path / "elsewhere.txt").write_text("alpha v1\n")
        target.symlink_to(tmp_path / "elsewhere.txt")
    elif kind == "dangling-symlink":
        target.symlink_to(tmp_path / "nowhere")
    elif kind == "fifo":
        os.mkfifo(target)  # reading it to hash it used to block forever
    else:
        target.mkdir()
    with pytest.raises(OutputExistsError):
        write_files(out, NEW)
    assert (out / "b.txt").read_text() == "beta v1\n"  # refused up front: nothing written
    if kind != "directory":
        write_files(out, NEW, force=True)
        assert target.is_file() and not target.is_symlink() and target.read_text() == "alpha v2\n"


# ---------------------------------------------------------------------------------------------------------
# Interrupted writes


def test_manifest_records_each_file_before_it_is_moved_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r"
    write_files(out, FILES)
    seen: list[tuple[str, str | None]] = []
    real = os.replace

    def spy(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name != MANIFEST:
            seen.append((Path(dst).name, manifest(out).get("pending", {}).get(Path(dst).name)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_files(out, NEW)
    assert seen == [(name, sha(data)) for name, data in NEW.items()]
    assert manifest(out) == {"generator": "routecalc", "files": {n: sha(d) for n, d in sorted(NEW.items())}}


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_failure_midway_leaves_no_temp_and_reruns_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException, fail_at: int
) -> None:
    out = tmp_path / "r"
    write_files(out, FILES)
    real = os.replace
    calls = {"n": 0}

    def flaky(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name != MANIFEST:
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise exc
        real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", flaky)
        with pytest.raises(RoutecalcError if isinstance(exc, OSError) else KeyboardInterrupt):
            write_files(out, NEW)
    assert temps(out) == []
    # files before the failure are new, the rest old: all of them routecalc's, so no --force is needed
    assert [(out / n).read_bytes() for n in FILES][: fail_at - 1] == [
        d.encode() if isinstance(d, str) else d for d in list(NEW.values())[: fail_at - 1]
    ]
    write_files(out, NEW)
    assert (out / "c.png").read_bytes() == b"\x89PNG v2" and temps(out) == []


def test_full_disk_while_writing_temps_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r"
    real = outputs._temp
    calls = {"n": 0}

    def full(directory: Path, name: str, payload: bytes) -> Path:
        calls["n"] += 1
        if calls["n"] == 3 and name != MANIFEST:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(directory, name, payload)

    monkeypatch.setattr(outputs, "_temp", full)
    with pytest.raises(RoutecalcError, match="No space left on device"):
        write_files(out, FILES)
    assert temps(out) == [] and not (out / "a.txt").exists()
    monkeypatch.setattr(outputs, "_temp", real)
    write_files(out, FILES)


KILLER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from routecalc import outputs
real, calls = os.replace, {{"n": 0}}
def kill_on_second(src, dst):
    if Path(dst).name != outputs.MANIFEST:
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: like a power cut
    real(src, dst)
os.replace = kill_on_second
outputs.write_files({out!r}, {{"a.txt": "alpha v2\\n", "b.txt": "beta v2\\n", "c.png": b"png v2"}})
"""


def test_run_killed_mid_write_is_rerun_without_force_and_its_temps_removed(tmp_path: Path) -> None:
    out = tmp_path / "r"
    write_files(out, FILES)
    proc = subprocess.run([sys.executable, "-c", KILLER.format(root=str(ROOT), out=str(out))], check=False)
    assert proc.returncode == -9
    assert (out / "a.txt").read_text() == "alpha v2\n" and (out / "b.txt").read_text() == "beta v1\n"
    assert len(temps(out)) == 2  # b.txt's and c.png's temp files: SIGKILL allows no cleanup
    write_files(out, FILES)  # no force needed: every file on disk is one the manifest lists
    assert temps(out) == [] and (out / "b.txt").read_text() == "beta v1\n"


def test_cli_report_rerun_after_interruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the charts are not the point here: a stand-in report of six small files keeps this test fast
    fake = {"report.md": "# r\n", **{f"chart-{i}.png": b"png %d" % i for i in range(5)}}
    monkeypatch.setattr("routecalc.report.build.build_report", lambda *a, **k: fake)
    out = tmp_path / "r"
    args = ["report", str(SUPPORT), "-o", str(out), "-n", "2000", "--today", "2026-11-25", "-f", "md"]
    real = os.replace
    calls = {"n": 0}

    def flaky(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name != MANIFEST:
            calls["n"] += 1
            if calls["n"] == 4:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "No space left on device" in flat(res.stderr) and temps(out) == []
    monkeypatch.setattr(os, "replace", real)
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert temps(out) == [] and sorted(p.name for p in out.iterdir()) == sorted([*fake, MANIFEST])
