"""Writing files safely: atomically (temp file + rename) and never over a file routecalc did not create.

A directory that routecalc writes into gets a manifest (``.routecalc-manifest.json``) of the files it wrote and
their SHA-256. A file listed there with an unchanged hash is routecalc's own and may be replaced; any other
existing file is refused unless ``force`` is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from routecalc.errors import OutputExistsError, RoutecalcError

MANIFEST = ".routecalc-manifest.json"


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to a temp file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RoutecalcError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RoutecalcError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(directory: Path) -> dict[str, str]:
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def check_new_file(path: str | Path, force: bool) -> None:
    """Refuse (OutputExistsError) when ``path`` exists and ``force`` is not set."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; refusing to replace it (use --force to overwrite)")


def check_files(directory: str | Path, names: Iterable[str], force: bool = False) -> None:
    """Refuse (OutputExistsError) if writing ``names`` into ``directory`` would replace a file routecalc did not
    write; call it before long work, so a refusal costs nothing."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputExistsError(f"{directory} exists and is not a directory")
    if force:
        return
    manifest = _manifest(directory)
    foreign = []
    for name in names:
        target = directory / name
        if target.exists() and manifest.get(name) != _sha(target.read_bytes()):
            foreign.append(str(target))
    if foreign:
        raise OutputExistsError(
            "refusing to replace files routecalc did not write (or that were edited since): "
            + ", ".join(foreign)
            + " (use --force to overwrite)"
        )


def write_files(directory: str | Path, files: Mapping[str, bytes | str], force: bool = False) -> list[Path]:
    """Write several files into ``directory``; refuse up front if any would replace a file not ours.

    Checks every target before writing anything, so a refusal leaves the directory untouched.
    """
    directory = Path(directory)
    check_files(directory, files, force)
    manifest = _manifest(directory)
    payloads = {name: (d.encode("utf-8") if isinstance(d, str) else d) for name, d in files.items()}
    written = []
    for name, payload in payloads.items():
        write_atomic(directory / name, payload)
        manifest[name] = _sha(payload)
        written.append(directory / name)
    write_atomic(directory / MANIFEST, json.dumps({"generator": "routecalc", "files": manifest}, indent=2))
    return written
