"""pytest_tinymodels.hub through the real huggingface_hub client and a loopback HubServer (no mocks).

huggingface_hub 2.x reads HF_ENDPOINT / HF_HUB_CACHE / HF_HUB_OFFLINE into
``huggingface_hub.constants`` at import. ``hub.py`` re-reads the environment at call time and passes
``endpoint=``/``cache_dir=``/``local_files_only=`` explicitly, so for hub.py setting the environment
is enough (``test_environment_is_read_at_call_time``). transformers calls ``hf_hub_download``
without an endpoint, so the transformers test uses ``hub_environment``, which patches both the
variables and the constants and restores them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_tinymodels.hub.client import (
    ALLOWED_DOWNLOAD_PATTERNS,
    BLOCKED_PATTERNS,
    CONFIG_AND_TOKENIZER_PATTERNS,
    HubError,
    download_repo,
    fetch_source,
    hub_offline,
)
from pytest_tinymodels.hub.server import HubServer, hub_environment, serve_directory

REPO = "org/tiny-gpt2"
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json"}
CONFIG_FILES = {"config.json", "generation_config.json"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    root = tmp_path_factory.mktemp("repos")
    repo = root / "org" / "tiny-gpt2"
    repo.mkdir(parents=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["hello world", "tiny models are tiny", "hello tiny world"], trainer)
    tok.save(str(repo / "tokenizer.json"))
    (repo / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>", "unk_token": "<unk>"})
    )
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 1, "n_head": 2, "n_embd": 8,
              "vocab_size": tok.get_vocab_size(), "n_positions": 16, "bos_token_id": 1, "eos_token_id": 1}
    (repo / "config.json").write_text(json.dumps(config))
    (repo / "generation_config.json").write_text(json.dumps({"max_new_tokens": 4}))
    save_file({"wte": np.zeros((4, 8), dtype=np.float32)}, str(repo / "model.safetensors"))
    (repo / "README.md").write_text("# tiny gpt2\n")
    (repo / "pytorch_model.bin").write_bytes(b"\x80\x04 pickle decoy")
    (repo / "training_args.bin").write_bytes(b"\x80\x04 pickle decoy")
    (repo / "modeling_custom.py").write_text("raise SystemExit('remote code must never be fetched')\n")
    (repo / "optimizer.pt").write_bytes(b"\x80\x04 decoy")
    # decoys that the broad allow pattern "tokenizer*" matches: only the block list keeps them out
    (repo / "tokenizer_loader.py").write_text("raise SystemExit('remote code must never be fetched')\n")
    (repo / "tokenizer").mkdir()
    (repo / "tokenizer" / "pytorch_model.bin").write_bytes(b"\x80\x04 pickle decoy")
    gated = root / "org" / "gated"
    gated.mkdir()
    (gated / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    return root


@pytest.fixture()
def server(root: Path):
    with HubServer(lambda: serve_directory(root), gated={"org/gated"}, tokens={"hf_good"}) as srv:
        yield srv


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


@pytest.fixture()
def online(server: HubServer, cache: Path):
    with hub_environment(endpoint=server.endpoint, cache_dir=cache, offline=False):
        yield server


@pytest.fixture(autouse=True)
def _hub_online():
    """These tests talk to a loopback server: not offline, even if the session sets HF_HUB_OFFLINE=1."""
    with hub_environment(offline=False):
        yield


def _names(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _dead_endpoint() -> str:
    srv = HubServer({}).start()
    endpoint = srv.endpoint
    srv.stop()
    return endpoint


def test_fetch_source_downloads_only_config_and_tokenizer(online: HubServer, root: Path, cache: Path) -> None:
    folder = fetch_source(REPO)
    assert folder.is_relative_to(cache / "models--org--tiny-gpt2" / "snapshots")
    assert _names(folder) == CONFIG_FILES | TOKENIZER_FILES
    for name in _names(folder):
        assert (folder / name).read_bytes() == (root / REPO / name).read_bytes()
    fetched = [path for method, path, _ in online.requests if "/resolve/" in path]
    assert fetched and not [p for p in fetched if p.endswith((".safetensors", ".bin", ".pt", ".py"))]

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.decode(tokenizer("hello tiny world")["input_ids"]) == "hello tiny world"


def test_download_repo_skips_pickles_and_code(online: HubServer, root: Path) -> None:
    folder = download_repo(REPO)
    assert _names(folder) == CONFIG_FILES | TOKENIZER_FILES | {"model.safetensors", "README.md"}
    assert (folder / "model.safetensors").read_bytes() == (root / REPO / "model.safetensors").read_bytes()


def test_cached_repo_resolves_offline_and_with_the_server_gone(
    root: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HubServer(lambda: serve_directory(root)) as srv:
        with hub_environment(endpoint=srv.endpoint, cache_dir=cache, offline=False):
            fetched, downloaded = fetch_source(REPO), download_repo(REPO)
    # the server is stopped: connection refused, not offline -> the cache answers
    with hub_environment(endpoint=srv.endpoint, cache_dir=cache, offline=False):
        start = time.monotonic()
        assert fetch_source(REPO) == fetched
        assert download_repo(REPO) == downloaded
        assert time.monotonic() - start < 5
    # HF_HUB_OFFLINE=1 set in the environment only, after huggingface_hub was imported
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", srv.endpoint)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_offline()
    assert fetch_source(REPO) == fetched
    assert download_repo(REPO) == downloaded
    assert _names(downloaded) >= {"model.safetensors", "config.json"}


def test_partial_cache_offline_is_a_clear_error(online: HubServer, cache: Path) -> None:
    fetch_source(REPO)  # configs and tokenizer only
    with hub_environment(offline=True):
        with pytest.raises(HubError, match="not \\(completely\\) in the local Hugging Face cache") as info:
            download_repo(REPO)  # the weights were never fetched
    assert info.value.repo_id == REPO and "hf download org/tiny-gpt2" in info.value.hint


@pytest.fixture()
def silent_endpoint(monkeypatch: pytest.MonkeyPatch):
    """A port that accepts TCP connections but never answers (a hung proxy or server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.mark.parametrize("mode", ["offline", "connection-refused", "no-answer"])
def test_missing_repo_without_network_fails_fast(mode: str, cache: Path, request: pytest.FixtureRequest) -> None:
    endpoint = request.getfixturevalue("silent_endpoint") if mode == "no-answer" else _dead_endpoint()
    with hub_environment(endpoint=endpoint, cache_dir=cache, offline=(mode == "offline")):
        start = time.monotonic()
        with pytest.raises(HubError) as info:
            fetch_source("org/never-downloaded")
        elapsed = time.monotonic() - start
    assert elapsed < 5, elapsed
    err = info.value
    assert err.repo_id == "org/never-downloaded" and "org/never-downloaded" in str(err)
    assert "hf download org/never-downloaded --include 'config.json'" in err.hint
    assert "local path" in err.hint
    assert ("offline mode" in str(err)) == (mode == "offline")


def test_error_hint_is_a_working_hf_download_command(online: HubServer, cache: Path) -> None:
    with hub_environment(offline=True):
        with pytest.raises(HubError) as info:
            fetch_source(REPO)
    command = re.search(r"`(hf download [^`]*)`", info.value.hint).group(1)
    argv = shlex.split(command)
    assert argv[:3] == ["hf", "download", REPO]
    # the `hf` console script, run as a separate process (it reads HF_ENDPOINT/HF_HUB_CACHE at import)
    script = "import sys; from huggingface_hub.cli.hf import main; sys.argv = ['hf', *sys.argv[1:]]; sys.exit(main())"
    env = {**os.environ, "HF_ENDPOINT": online.endpoint, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    done = subprocess.run([sys.executable, "-c", script, *argv[1:]], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with hub_environment(offline=True):
        assert _names(fetch_source(REPO)) == CONFIG_FILES | TOKENIZER_FILES


def test_local_directory_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "my-model"
    local.mkdir()
    (local / "config.json").write_text("{}")
    assert fetch_source(str(local)) == local
    assert fetch_source(local) == local
    monkeypatch.chdir(tmp_path)
    assert fetch_source("./my-model") == local
    assert fetch_source("my-model") == local  # an existing directory wins over a repo id
    monkeypatch.setenv("HOME", str(tmp_path))
    assert fetch_source("~/my-model") == local
    with pytest.raises(HubError, match="does not exist"):
        fetch_source("./missing-model")
    with pytest.raises(HubError, match="is not a directory"):
        fetch_source(str(local / "config.json"))


def test_revision_pinned_to_commit_sha_and_bad_revision(online: HubServer) -> None:
    from huggingface_hub import HfApi

    sha = HfApi(endpoint=online.endpoint).model_info(REPO).sha
    folder = fetch_source(REPO, revision=sha)
    assert folder.name == sha and "config.json" in _names(folder)
    with pytest.raises(HubError, match="Revision 'v0.0-nope' does not exist") as info:
        fetch_source(REPO, revision="v0.0-nope")
    assert info.value.repo_id == REPO and "commit sha" in info.value.hint


def test_unknown_gated_and_invalid_repos(online: HubServer) -> None:
    with pytest.raises(HubError, match="not found") as info:
        fetch_source("org/does-not-exist")
    assert info.value.repo_id == "org/does-not-exist" and "HF_TOKEN" in info.value.hint
    with pytest.raises(HubError, match="gated") as info:
        fetch_source("org/gated", token=False)
    assert "hf auth login" in info.value.hint
    assert (fetch_source("org/gated", token="hf_good") / "config.json").is_file()
    with pytest.raises(HubError, match="valid Hub repo id"):
        fetch_source("org/bad--name//x")
    with pytest.raises(HubError, match="Unsupported repo type"):
        download_repo(REPO, repo_type="space")


def test_environment_is_read_at_call_time(server: HubServer, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    assert constants.ENDPOINT != server.endpoint  # the client still points where it did at import
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint + "/")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert not hub_offline()
    assert fetch_source(REPO).is_relative_to(cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_offline()


def test_transformers_autoconfig_through_the_server(online: HubServer, cache: Path) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(REPO)
    assert (config.model_type, config.n_layer, config.n_embd) == ("gpt2", 1, 8)
    assert (cache / "models--org--tiny-gpt2" / "refs" / "main").is_file()


def test_patterns_never_admit_pickles_or_code() -> None:
    from huggingface_hub.utils import filter_repo_objects

    repo_files = [
        "config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model", "vocab.txt",
        "merges.txt", "special_tokens_map.json", "chat_template.jinja", "preprocessor_config.json",
        "model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "README.md",
        "pytorch_model.bin", "tokenizer/pytorch_model.bin", "training_args.bin", "optimizer.pt", "rng_state.pth",
        "tf_model.h5", "flax_model.msgpack", "model.ckpt", "scaler.pkl", "modeling_x.py", "tokenizer_x.py",
        "tokenization_custom.py", "vocab.npy",
    ]
    forbidden = (".bin", ".pt", ".pth", ".pkl", ".ckpt", ".h5", ".msgpack", ".py", ".npy")
    fetched = set(filter_repo_objects(repo_files, allow_patterns=list(CONFIG_AND_TOKENIZER_PATTERNS),
                                      ignore_patterns=list(BLOCKED_PATTERNS)))
    downloaded = set(filter_repo_objects(repo_files, allow_patterns=list(ALLOWED_DOWNLOAD_PATTERNS),
                                         ignore_patterns=list(BLOCKED_PATTERNS)))
    assert not [f for f in fetched | downloaded if f.endswith(forbidden)]
    assert {"config.json", "tokenizer.json", "tokenizer.model", "spiece.model", "vocab.txt", "merges.txt",
            "chat_template.jinja", "preprocessor_config.json"} <= fetched
    assert not [f for f in fetched if ".safetensors" in f and not f.endswith(".json")]
    assert {"model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
            "README.md"} <= downloaded
