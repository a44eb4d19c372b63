"""Writing files safely: atomically (temp file + rename) and never over a file routecalc did not create.

A directory that routecalc writes into gets a manifest (``.routecalc-manifest.json``) of the files it wrote and
their SHA-256. A regular file listed there with a hash it recorded is routecalc's own and may be replaced; any
other existing entry (a file, a directory, a symlink, even a dangling one) is refused unless ``force`` is set.

Several files are written in three steps, so that no crash leaves the directory in a state the next run refuses:

1. the manifest records every new file's hash as *pending*, beside the hash of the version it replaces;
2. every file is written to a temp file and then renamed into place;
3. the manifest records the new hashes alone.

A run killed anywhere in between leaves files whose hashes the manifest lists, so running again needs no
``--force``. Temp files are removed on any error the process sees; those of a run killed outright (SIGKILL,
power loss) carry the suffix ``.routecalc-tmp`` and are removed by the next run that writes the same names.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from routecalc import limits
from routecalc.errors import InputError, OutputExistsError, RoutecalcError

MANIFEST = ".routecalc-manifest.json"
TMP_SUFFIX = ".routecalc-tmp"


def _payload(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _temp(directory: Path, name: str, payload: bytes) -> Path:
    """``payload`` in a new temp file beside ``name`` (fsynced, usual permissions); removed again on failure."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=TMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to a temp file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp(path.parent, path.name, _payload(data))
    except OSError as exc:
        raise RoutecalcError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RoutecalcError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _kind(path: Path) -> str | None:
    """What is at ``path`` without following a symlink: None (nothing), file, dir, symlink or other."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


def _describe(path: Path, kind: str) -> str:
    if kind == "symlink":
        return f"{path} (a symlink{' to nothing' if not path.exists() else ''})"
    return f"{path} (a {'directory' if kind == 'dir' else 'device, FIFO or socket'})" if kind != "file" else str(path)


def _file_sha(path: Path) -> str | None:
    """SHA-256 of a regular file (not through a symlink), bounded; None if it is not one or cannot be read."""
    if _kind(path) != "file":
        return None
    try:
        return _sha(limits.read_bytes(path, limits.MAX_OWN_FILE_BYTES))
    except InputError:
        return None


def _manifest(directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(recorded hash per file, pending hash per file) from the directory's manifest; empty if none or unusable."""
    path = directory / MANIFEST
    if _kind(path) != "file":
        return {}, {}
    try:
        data = json.loads(limits.read_bytes(path, limits.MAX_OWN_FILE_BYTES))
        files = {str(k): str(v) for k, v in data.get("files", {}).items()}
        pending = {str(k): str(v) for k, v in data.get("pending", {}).items()}
        return files, pending
    except (InputError, ValueError, AttributeError, RecursionError):
        return {}, {}


def check_new_file(path: str | Path, force: bool) -> None:
    """Refuse (OutputExistsError) when anything is at ``path`` (a file, a directory, a symlink, even a dangling
    one) and ``force`` is not set; a directory is refused even with ``force`` (it cannot become a file)."""
    path = Path(path)
    kind = _kind(path)
    if kind == "dir":
        raise OutputExistsError(f"{path} is a directory; give a file name")
    if kind is not None and not force:
        raise OutputExistsError(f"{_describe(path, kind)} exists; refusing to replace it (use --force to overwrite)")


def _remove_stale_temps(directory: Path, names: Iterable[str]) -> None:
    """Temp files a killed run left for these names (``.<name>.<random>.routecalc-tmp``, regular files only)."""
    prefixes = tuple(f".{n}." for n in names)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(prefixes) and entry.name.endswith(TMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


def _json(files: Mapping[str, str], pending: Mapping[str, str] | None = None) -> str:
    data: dict = {"generator": "routecalc", "files": dict(sorted(files.items()))}
    if pending:
        data["pending"] = dict(sorted(pending.items()))
    return json.dumps(data, indent=2)


def check_files(directory: str | Path, names: Iterable[str], force: bool = False) -> tuple[dict, dict]:
    """Refuse (OutputExistsError) if writing ``names`` into ``directory`` would replace an entry routecalc did not
    write (or a directory); call it before long work, so a refusal costs nothing. Returns the manifest's
    (recorded, pending) hashes."""
    directory = Path(directory)
    kind = _kind(directory)
    if kind is not None and not directory.is_dir():
        raise OutputExistsError(f"{_describe(directory, kind)} exists and is not a directory")
    recorded, pending = _manifest(directory)
    foreign = []
    for name in [*names, MANIFEST]:
        target = directory / name
        kind = _kind(target)
        if kind == "dir":
            raise OutputExistsError(f"{target} is a directory; routecalc writes a file there")
        if kind is None or force:
            continue
        if name == MANIFEST:
            ours = kind == "file"
        else:
            ours = _file_sha(target) in {recorded.get(name), pending.get(name)} - {None}
        if not ours:
            foreign.append(_describe(target, kind))
    if foreign:
        raise OutputExistsError(
            "refusing to replace files routecalc did not write (or that were edited since): "
            + ", ".join(foreign)
            + " (use --force to overwrite)"
        )
    return recorded, pending


def write_files(directory: str | Path, files: Mapping[str, bytes | str], force: bool = False) -> list[Path]:
    """Write several files into ``directory``; refuse up front if any would replace an entry not ours.

    Checks every target (and the directory path itself) before writing anything, so a refusal leaves the
    directory untouched; then writes as the module docstring says, so an interrupted run can be re-run
    without ``force`` and leaves no temp file behind.
    """
    directory = Path(directory)
    payloads = {name: _payload(d) for name, d in files.items()}
    recorded, pending = check_files(directory, payloads, force)
    new = {name: _sha(p) for name, p in payloads.items()}
    for name in payloads:  # what is on disk now (checked above: ours, or --force), so a crash keeps it accepted
        now = _file_sha(directory / name)
        if now is None:
            recorded.pop(name, None)
        else:
            recorded[name] = now
    pending = {k: v for k, v in pending.items() if k not in new}
    temps: list[tuple[Path, Path]] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(directory, [*payloads, MANIFEST])
        write_atomic(directory / MANIFEST, _json(recorded, {**pending, **new}))  # 1. intent first
        for name, payload in payloads.items():
            temps.append((_temp(directory, name, payload), directory / name))
        while temps:  # 2. into place, one by one
            tmp, target = temps[0]
            os.replace(tmp, target)
            temps.pop(0)
    except OSError as exc:
        raise RoutecalcError(f"cannot write into {directory}: {exc.strerror or exc}") from None
    finally:
        for tmp, _ in temps:  # whatever stopped us (an error, Ctrl-C), no temp file stays behind
            tmp.unlink(missing_ok=True)
    recorded.update(new)
    write_atomic(directory / MANIFEST, _json(recorded, pending))  # 3. done
    return [directory / name for name in payloads]
