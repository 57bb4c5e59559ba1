"""Hugging Face Hub access: fetch the config/tokenizer files of a source, download a repo.

Everything goes through ``huggingface_hub``'s own API (``snapshot_download``), so the standard
cache (``HF_HUB_CACHE``: ``models--org--name/{blobs,refs,snapshots}``), tokens (``HF_TOKEN``,
``hf auth login``), ``HF_ENDPOINT`` and offline mode behave as everywhere else.

Behaviour worth knowing (huggingface_hub 2.x):

* ``huggingface_hub.constants`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE``
  once, at import (``hf_hub_download`` even builds its URLs from an import-time template). This
  module reads the three variables again at call time (:func:`hub_endpoint`,
  :func:`hub_offline`) and passes ``endpoint=``, ``local_files_only=`` and ``cache_dir=``
  explicitly, so changing the environment during a session works. (To point *other* callers
  such as transformers at another endpoint, see :func:`pytest_tinymodels.hub.server.hub_environment`.)
* Weights are never fetched by :func:`fetch_source`, and pickles / code (``*.bin``, ``*.pt``,
  ``*.py``, ...) are never fetched at all: :data:`BLOCKED_PATTERNS` is always passed as
  ``ignore_patterns``, which wins over any allow pattern.
* No hang, no retry loop: before downloading, the repo is looked up once with a short timeout
  (``HF_HUB_ETAG_TIMEOUT``, default 10 s; ``huggingface_hub`` itself sends that request with no
  timeout). If the Hub cannot be reached (connection refused, DNS failure, timeout) the cache is
  used (``local_files_only=True``), which also avoids the client's retry-with-backoff path for
  uncached files (about 20 s). A missing cache entry then raises :class:`HubError` at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import TinyModelsError as _ErrorBase

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ALLOWED_DOWNLOAD_PATTERNS",
    "BLOCKED_PATTERNS",
    "CONFIG_AND_TOKENIZER_PATTERNS",
    "DATASET_DOWNLOAD_PATTERNS",
    "HubError",
    "download_repo",
    "fetch_source",
    "hub_endpoint",
    "hub_offline",
]

#: What a tiny model is built from: configs, tokenizer files, processor configs, chat templates.
CONFIG_AND_TOKENIZER_PATTERNS: tuple[str, ...] = (
    "config.json",
    "generation_config.json",
    "tokenizer*",  # tokenizer.json, tokenizer_config.json, tokenizer.model, tokenizer.tiktoken, ...
    "vocab*",  # vocab.json, vocab.txt
    "*vocab.json",  # entity_vocab.json, ...
    "*vocab.txt",
    "merges.txt",
    "*.model",  # SentencePiece: spiece.model, sentencepiece.bpe.model
    "*.spm",  # Marian source.spm / target.spm
    "*.tiktoken",
    "tekken.json",  # mistral-common tokenizer
    "special_tokens_map.json",
    "added_tokens.json",
    "preprocessor_config.json",
    "processor_config.json",
    "image_processor_config.json",
    "video_preprocessor_config.json",
    "feature_extractor_config.json",
    "chat_template*",  # chat_template.json, chat_template.jinja
    "additional_chat_templates/*",
)

#: Never downloaded: pickles (arbitrary code on load), other frameworks' weights, remote code.
BLOCKED_PATTERNS: tuple[str, ...] = (
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    "*.h5",
    "*.msgpack",
    "*.joblib",
    "*.npy",
    "*.npz",
    "*.py",
    "*.pyc",
)

#: :func:`download_repo` for model repos: the above plus safetensors weights and plain-text metadata.
ALLOWED_DOWNLOAD_PATTERNS: tuple[str, ...] = CONFIG_AND_TOKENIZER_PATTERNS + (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.json",  # e.g. sentence-transformers modules.json, 1_Pooling/config.json
    "*.txt",
    "*.md",
    "*.jinja",
    "LICENSE*",
    "NOTICE*",
    ".gitattributes",
)

#: :func:`download_repo` for dataset repos: data files in non-executable formats (no loading scripts).
DATASET_DOWNLOAD_PATTERNS: tuple[str, ...] = (
    "*.parquet",
    "*.arrow",
    "*.jsonl",
    "*.json",
    "*.csv",
    "*.tsv",
    "*.txt",
    "*.md",
    "LICENSE*",
    ".gitattributes",
)

_TRUE = {"1", "ON", "YES", "TRUE"}


class HubError(_ErrorBase):
    """A Hub repo could not be fetched: names the repo and says what to do (``hint``)."""

    def __init__(self, message: str, *, repo_id: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.repo_id = repo_id
        self.hint = hint
        super().__init__(f"{message}\n  -> {hint}" if hint else message)


# --------------------------------------------------------------------------- environment


def hub_offline() -> bool:
    """Whether Hub access is off: ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` now, or at import.

    ``huggingface_hub.constants.HF_HUB_OFFLINE`` is fixed when huggingface_hub is imported and is
    what the client itself enforces; the environment is read again here so that setting
    ``HF_HUB_OFFLINE=1`` later in a session is honoured too.
    """
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if (os.environ.get(name) or "").strip().upper() in _TRUE:
            return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    """The Hub URL: ``HF_ENDPOINT`` read now, else ``huggingface_hub.constants.ENDPOINT``.

    ``constants.ENDPOINT`` (and the ``hf_hub_download`` URL template) is fixed at import, so
    this value is passed explicitly as ``endpoint=``.
    """
    env = (os.environ.get("HF_ENDPOINT") or "").strip()
    if env:
        return env.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def _timeout() -> float:
    """Seconds to wait for the Hub's answer to the lookup request (``HF_HUB_ETAG_TIMEOUT``)."""
    raw = (os.environ.get("HF_HUB_ETAG_TIMEOUT") or "").strip()
    try:
        if raw:
            return max(0.1, float(raw))
    except ValueError:
        pass
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def _cache_dir() -> str:
    """``HF_HUB_CACHE`` read now (passed explicitly, like the endpoint), else the client's default."""
    env = (os.environ.get("HF_HUB_CACHE") or "").strip()
    if env:
        return os.path.expanduser(env)
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exception types meaning "the Hub cannot be reached" for the installed client."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]  # incl. OfflineModeIsEnabled
    try:
        import httpx2

        errors.append(httpx2.TransportError)  # connect/read/timeout/protocol errors
    except ImportError:  # pragma: no cover - huggingface_hub < 2 used requests / httpx
        for module, names in (("httpx", ("TransportError",)), ("requests", ("ConnectionError", "Timeout"))):
            try:
                mod = __import__(module)
                errors.extend(getattr(mod, n, None) or getattr(mod.exceptions, n) for n in names)
            except (ImportError, AttributeError):
                pass
    return tuple(errors)


# --------------------------------------------------------------------------- public API


def fetch_source(
    source: str | os.PathLike[str], *, revision: str | None = None, token: str | bool | None = None
) -> Path:
    """The directory holding the config and tokenizer files of ``source``.

    ``source`` is an existing local directory (also ``./x``, ``/abs``, ``~/x``), returned as is,
    or a Hub repo id (``org/name``), whose config/tokenizer/processor files
    (:data:`CONFIG_AND_TOKENIZER_PATTERNS`) are fetched into the Hugging Face cache; the snapshot
    folder is returned. Weights are never downloaded. ``token=None`` lets huggingface_hub find
    the token (``HF_TOKEN``, ``hf auth login``).
    """
    local = _local_dir(source)
    if local is not None:
        return local
    return _snapshot(
        str(source),
        repo_type="model",
        revision=revision,
        token=token,
        allow_patterns=CONFIG_AND_TOKENIZER_PATTERNS,
    )


def download_repo(
    repo_id: str, *, revision: str | None = None, token: str | bool | None = None, repo_type: str = "model"
) -> Path:
    """Download a repo's safe files into the Hugging Face cache and return the snapshot folder.

    Model repos get :data:`ALLOWED_DOWNLOAD_PATTERNS` (configs, tokenizers, ``*.safetensors``,
    text), dataset repos :data:`DATASET_DOWNLOAD_PATTERNS`; :data:`BLOCKED_PATTERNS` (pickles,
    ``*.py``) are never downloaded.
    """
    if repo_type not in ("model", "dataset"):
        raise HubError(
            f"Unsupported repo type {repo_type!r} for {repo_id!r}", repo_id=repo_id, hint="use 'model' or 'dataset'"
        )
    patterns = DATASET_DOWNLOAD_PATTERNS if repo_type == "dataset" else ALLOWED_DOWNLOAD_PATTERNS
    return _snapshot(repo_id, repo_type=repo_type, revision=revision, token=token, allow_patterns=patterns)


# --------------------------------------------------------------------------- internals


def _local_dir(source: str | os.PathLike[str]) -> Path | None:
    """``source`` as a local directory; None if it is meant as a repo id; HubError if a missing path."""
    text = os.fspath(source)
    if not text.strip():
        raise HubError("Empty source", hint="give a Hub repo id like 'org/name' or a local directory")
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        return Path(os.path.abspath(path))
    path_like = (
        isinstance(source, os.PathLike)
        or text.startswith(("./", "../", "~", "/", ".\\", "..\\"))
        or text in (".", "..")
        or os.path.isabs(text)
        or "\\" in text
    )
    if path_like:
        what = "is not a directory" if path.exists() else "does not exist"
        raise HubError(
            f"Local source {text!r} {what}",
            hint="point source to a directory holding config.json and the tokenizer files, or use a Hub id 'org/name'",
        )
    return None


def _download_hint(repo_id: str, repo_type: str, revision: str | None, patterns: Sequence[str]) -> str:
    parts = ["hf download", repo_id]
    if repo_type != "model":
        parts.append(f"--repo-type {repo_type}")
    if revision:
        parts.append(f"--revision {revision}")
    parts.extend(f"--include '{p}'" for p in patterns)
    parts.extend(f"--exclude '{p}'" for p in BLOCKED_PATTERNS)  # as here: no pickles, no code
    return (
        f"run `{' '.join(parts)}` on a connected machine (with the same HF_HUB_CACHE) and copy the cache over, "
        "or set source to a local path"
    )


def _quiet_tqdm() -> type:
    from tqdm.auto import tqdm

    class _QuietTqdm(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return _QuietTqdm


def _snapshot(
    repo_id: str, *, repo_type: str, revision: str | None, token: str | bool | None, allow_patterns: Sequence[str]
) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubError(
            f"{repo_id!r} is neither an existing local directory nor a valid Hub repo id ({err})",
            repo_id=repo_id,
            hint="use 'org/name' for a Hub repo, or a path starting with './', '/' or '~' for a local directory",
        ) from None

    endpoint = hub_endpoint()
    network_errors = _network_errors()
    label = f"{'dataset ' if repo_type == 'dataset' else ''}repo {repo_id!r}" + (
        f" (revision {revision!r})" if revision else ""
    )
    unreachable: str | None = "offline mode is on (HF_HUB_OFFLINE=1)" if hub_offline() else None

    if unreachable is None:
        # One short-timeout lookup: snapshot_download sends its own with no timeout at all.
        try:
            HfApi(endpoint=endpoint, token=token).repo_info(
                repo_id, repo_type=repo_type, revision=revision, timeout=_timeout()
            )
        except network_errors as err:
            unreachable = f"the Hub at {endpoint} cannot be reached ({type(err).__name__}: {err})"
        except HfHubHTTPError:
            pass  # not found / gated / 5xx: snapshot_download falls back to the cache, else raises it

    try:
        folder = snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            token=token,
            endpoint=endpoint,
            allow_patterns=list(allow_patterns),
            ignore_patterns=list(BLOCKED_PATTERNS),
            local_files_only=unreachable is not None,
            cache_dir=_cache_dir(),
            etag_timeout=_timeout(),
            tqdm_class=_quiet_tqdm(),
        )
    except RevisionNotFoundError:
        raise HubError(
            f"Revision {revision!r} does not exist in {label} on {endpoint}",
            repo_id=repo_id,
            hint="use a branch or tag name or a full 40-character commit sha, or leave revision unset for 'main'",
        ) from None
    except GatedRepoError:
        raise HubError(
            f"The {label} is gated on {endpoint}: downloading it needs a token with access",
            repo_id=repo_id,
            hint=f"accept the conditions on {endpoint}/{_url_prefix(repo_type)}{repo_id}, then log in with "
            "`hf auth login` or set HF_TOKEN (or pass token=...)",
        ) from None
    except RepositoryNotFoundError:
        raise HubError(
            f"The {label} was not found on {endpoint} (or it is private and no valid token was sent)",
            repo_id=repo_id,
            hint="check the repo id; for a private repo log in with `hf auth login` or set HF_TOKEN",
        ) from None
    except LocalEntryNotFoundError as err:  # includes IncompleteSnapshotError
        cause = err.__cause__ or err
        reason = unreachable or (
            f"the Hub at {endpoint} could not serve it ({type(cause).__name__}: {str(cause).strip().splitlines()[0]})"
        )
        raise HubError(
            f"The {label} is not (completely) in the local Hugging Face cache ({_cache_dir()}) and {reason}",
            repo_id=repo_id,
            hint=_download_hint(repo_id, repo_type, revision, allow_patterns),
        ) from None
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", "?")
        raise HubError(
            f"The Hub at {endpoint} answered HTTP {status} for {label}: {str(err).splitlines()[0]}",
            repo_id=repo_id,
            hint="retry later; if it persists, " + _download_hint(repo_id, repo_type, revision, allow_patterns),
        ) from None
    except network_errors as err:
        raise HubError(
            f"Lost the connection to {endpoint} while downloading {label} ({type(err).__name__}: {err})",
            repo_id=repo_id,
            hint="retry, or " + _download_hint(repo_id, repo_type, revision, allow_patterns),
        ) from None
    return Path(folder)


def _url_prefix(repo_type: str) -> str:
    return "datasets/" if repo_type == "dataset" else ""
