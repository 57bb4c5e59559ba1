"""HubServer against the real huggingface_hub client, over real HTTP on loopback (no mocks).

huggingface_hub 2.x copies HF_ENDPOINT / HF_HUB_CACHE / HF_HUB_OFFLINE into
``huggingface_hub.constants`` at import time (and builds ``constants.HUGGINGFACE_CO_URL_TEMPLATE``
and the module-level ``hf_api.api`` from them), so setting the environment variables in a test
does not reach the already imported client. ``hub_environment`` (used by the ``hub_env`` fixture)
sets both the variables and those attributes and restores them afterwards.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from pytest_tinymodels.hub.server import HubServer, hub_environment, serve_directory

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"


def _write_safetensors(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"wte": np.arange(12, dtype=np.float32).reshape(3, 4), "bias": np.ones(4, dtype=np.float32)}, str(path))


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("hub")
    (base / "secret.txt").write_bytes(SECRET)  # sibling of the served root: must never be served
    root = base / "root"
    a = root / "org" / "tiny-a"
    (a / "sub" / "deeper").mkdir(parents=True)
    config = {"model_type": "gpt2", "n_layer": 1, "architectures": ["GPT2LMHeadModel"]}
    (a / "config.json").write_text(json.dumps(config))
    (a / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0}}}))
    _write_safetensors(a / "model.safetensors")
    (a / "README.md").write_text("# tiny-a\n")
    (a / "pytorch_model.bin").write_bytes(b"\x80\x04decoy pickle")
    (a / "sub" / "deeper" / "notes.txt").write_text("nested file\n")
    b = root / "org" / "tiny-b"
    b.mkdir(parents=True)
    (b / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (b / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    ds = root / "datasets" / "org" / "tiny-ds"
    (ds / "data").mkdir(parents=True)
    (ds / "data" / "train.jsonl").write_text('{"text": "hello"}\n{"text": "world"}\n')
    (ds / "README.md").write_text("# tiny dataset\n")
    return {"root": root, "a": a, "b": b, "ds": ds, "base": base}


@pytest.fixture(scope="module")
def server(layout: dict):
    with HubServer(lambda: serve_directory(layout["root"])) as srv:
        yield srv


@pytest.fixture()
def hub_env(server: HubServer, tmp_path: Path):
    cache = tmp_path / "hf-cache"
    with hub_environment(endpoint=server.endpoint, cache_dir=cache, offline=False):
        yield cache


@pytest.fixture(autouse=True)
def _hub_online():
    """These tests talk to a loopback server: not offline, even if the session sets HF_HUB_OFFLINE=1."""
    with hub_environment(offline=False):
        yield


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _raw(server: HubServer, path: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_serve_directory_finds_models_and_datasets(layout: dict) -> None:
    repos = serve_directory(layout["root"])
    assert repos == {"org/tiny-a": layout["a"], "org/tiny-b": layout["b"], "datasets/org/tiny-ds": layout["ds"]}


def test_hf_hub_download_is_byte_identical_and_uses_hub_cache_layout(layout: dict, hub_env: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download

    sha = HfApi().model_info("org/tiny-a").sha
    for rel, content in _files(layout["a"]).items():
        local = Path(hf_hub_download("org/tiny-a", rel))
        assert local.read_bytes() == content, rel
        assert local.parent.parent.name != "" and f"snapshots/{sha}/" in local.as_posix()
    storage = hub_env / "models--org--tiny-a"
    assert (storage / "refs" / "main").read_text() == sha
    blobs = {p.name for p in (storage / "blobs").iterdir()}
    safetensors = (layout["a"] / "model.safetensors").read_bytes()
    config = (layout["a"] / "config.json").read_bytes()
    assert hashlib.sha256(safetensors).hexdigest() in blobs  # LFS-like file: ETag = sha256
    assert hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest() in blobs  # git blob sha1


def test_explicit_endpoint_without_environment(server: HubServer, layout: dict, tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download("org/tiny-b", "vocab.txt", endpoint=server.endpoint, cache_dir=tmp_path)
    assert Path(path).read_bytes() == (layout["b"] / "vocab.txt").read_bytes()


def test_snapshot_download_with_allow_patterns(layout: dict, hub_env: Path) -> None:
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download("org/tiny-a", allow_patterns=["*.json", "*.safetensors", "sub/*"]))
    expected = {
        k: v for k, v in _files(layout["a"]).items() if k.endswith((".json", ".safetensors")) or k.startswith("sub/")
    }
    assert _files(folder) == expected
    assert not list(folder.rglob("*.bin"))


def test_model_info_tree_and_list_repo_files(layout: dict, hub_env: Path) -> None:
    from huggingface_hub import HfApi, list_repo_files

    api = HfApi()
    info = api.model_info("org/tiny-a", files_metadata=True)
    files = _files(layout["a"])
    assert info.id == "org/tiny-a" and len(info.sha) == 40 and info.private is False
    assert {s.rfilename: s.size for s in info.siblings} == {k: len(v) for k, v in files.items()}
    lfs = {s.rfilename: s.lfs for s in info.siblings}
    assert lfs["model.safetensors"].sha256 == hashlib.sha256(files["model.safetensors"]).hexdigest()
    assert lfs["config.json"] is None
    assert info.config == {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}
    assert api.model_info("org/tiny-a", revision=info.sha).sha == info.sha

    assert sorted(api.list_repo_files("org/tiny-a")) == sorted(files)
    assert sorted(list_repo_files("org/tiny-a")) == sorted(files)  # module-level helper, bound at import
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("org/tiny-a")}
    assert top == {**{k: "RepoFile" for k in files if "/" not in k}, "sub": "RepoFolder"}
    nested = [e.path for e in api.list_repo_tree("org/tiny-a", path_in_repo="sub", recursive=True)]
    assert nested == ["sub/deeper", "sub/deeper/notes.txt"]


def test_dataset_repo(layout: dict, hub_env: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    info = HfApi().dataset_info("org/tiny-ds")
    assert info.id == "org/tiny-ds" and len(info.sha) == 40
    path = hf_hub_download("org/tiny-ds", "data/train.jsonl", repo_type="dataset")
    assert Path(path).read_bytes() == (layout["ds"] / "data" / "train.jsonl").read_bytes()
    assert "datasets--org--tiny-ds" in path
    folder = Path(snapshot_download("org/tiny-ds", repo_type="dataset"))
    assert _files(folder) == _files(layout["ds"])
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("org/tiny-ds")  # a dataset is not a model
    with pytest.raises(RepositoryNotFoundError):
        HfApi().dataset_info("org/tiny-a")


def test_commit_sha_is_deterministic_and_follows_content(layout: dict, tmp_path: Path) -> None:
    import shutil

    from huggingface_hub import HfApi

    copy = tmp_path / "copy"
    shutil.copytree(layout["a"], copy)
    with HubServer({"org/tiny-a": layout["a"]}) as s1, HubServer(lambda: {"org/tiny-a": copy}) as s2:
        sha1 = HfApi(endpoint=s1.endpoint).model_info("org/tiny-a").sha
        assert HfApi(endpoint=s2.endpoint).model_info("org/tiny-a").sha == sha1
        (copy / "config.json").write_text('{"model_type": "gpt2", "n_layer": 2}')
        sha2 = HfApi(endpoint=s2.endpoint).model_info("org/tiny-a").sha
        assert sha2 != sha1
        (copy / "added.txt").write_text("x")
        assert HfApi(endpoint=s2.endpoint).model_info("org/tiny-a").sha not in (sha1, sha2)


def test_revision_pinned_to_commit_sha(layout: dict, hub_env: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    sha = HfApi().model_info("org/tiny-b").sha
    assert Path(hf_hub_download("org/tiny-b", "config.json", revision=sha)).read_bytes() == (
        layout["b"] / "config.json"
    ).read_bytes()
    assert Path(snapshot_download("org/tiny-b", revision=sha)).name == sha


def test_unknown_repo_file_and_revision_raise_hub_exceptions(hub_env: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/does-not-exist", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("org/does-not-exist")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/tiny-a", "missing.json")
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree("org/tiny-a", path_in_repo="nope"))
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/tiny-a", "config.json", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/tiny-a", revision="dev")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download("org/tiny-a", revision="0" * 40)


def test_missing_repo_status_follows_authentication(server: HubServer) -> None:
    status, headers, _ = _raw(server, "/api/models/org/nope")
    assert (status, headers["x-error-code"]) == (401, "RepoNotFound")  # like the Hub, anonymous
    status, headers, _ = _raw(server, "/api/models/org/nope", headers={"Authorization": "Bearer hf_x"})
    assert (status, headers["x-error-code"]) == (404, "RepoNotFound")


def test_gated_repo_needs_a_token(layout: dict, tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError

    with HubServer({"org/gated": layout["b"]}, gated={"org/gated"}, tokens={"hf_good"}) as srv:
        with pytest.raises(GatedRepoError):
            hf_hub_download("org/gated", "config.json", endpoint=srv.endpoint, cache_dir=tmp_path, token=False)
        with pytest.raises(GatedRepoError):
            hf_hub_download("org/gated", "config.json", endpoint=srv.endpoint, cache_dir=tmp_path, token="hf_bad")
        ok = hf_hub_download("org/gated", "config.json", endpoint=srv.endpoint, cache_dir=tmp_path, token="hf_good")
        assert Path(ok).read_bytes() == (layout["b"] / "config.json").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/org/tiny-a/resolve/main/../../../secret.txt",
        "/org/tiny-a/resolve/main/%2e%2e/%2e%2e/%2e%2e/../secret.txt",
        "/org/tiny-a/resolve/main/..%2F..%2F..%2F..%2Fsecret.txt",
        "/org/tiny-a/resolve/main/%2F" + "%2F".join(["..", "..", "..", "..", "secret.txt"]),
        "/org/tiny-a/resolve/main//etc/passwd",
        "/org/tiny-a/resolve/main/%2Fetc%2Fpasswd",
        "/org/tiny-a/resolve/main/sub%5C..%5C..%5C..%5C..%5Csecret.txt",
        "/org/tiny-a/resolve/main/sub/%00/x",
        "/org/..%2F..%2F../resolve/main/secret.txt",
        "/..%2F../resolve/main/secret.txt",
        "/api/models/org/tiny-a/tree/main/..%2F..%2F..",
        "/api/models/org/tiny-a/tree/main/%2E%2E",
        "/api/models/..%2F../tiny-a",
    ],
)
def test_path_traversal_never_escapes_the_repo(server: HubServer, path: str) -> None:
    for method in ("GET", "HEAD"):
        status, _, body = _raw(server, path, method)
        assert status in (400, 401, 404), (method, path, status)
        assert SECRET not in body and b"root:" not in body


def test_head_headers_and_range_requests(server: HubServer, layout: dict) -> None:
    content = (layout["a"] / "model.safetensors").read_bytes()
    status, headers, body = _raw(server, "/org/tiny-a/resolve/main/model.safetensors", "HEAD")
    assert status == 200 and body == b""
    assert headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"' == headers["x-linked-etag"]
    assert int(headers["content-length"]) == len(content) == int(headers["x-linked-size"])
    assert len(headers["x-repo-commit"]) == 40
    status, headers, body = _raw(server, "/org/tiny-a/resolve/main/model.safetensors", headers={"Range": "bytes=3-9"})
    assert status == 206 and body == content[3:10]
    assert headers["content-range"] == f"bytes 3-9/{len(content)}"
    status, _, body = _raw(server, "/org/tiny-a/resolve/main/model.safetensors", headers={"Range": "bytes=-5"})
    assert status == 206 and body == content[-5:]
    past_end = {"Range": f"bytes={len(content)}-"}
    status, headers, _ = _raw(server, "/org/tiny-a/resolve/main/model.safetensors", headers=past_end)
    assert status == 416 and headers["content-range"] == f"bytes */{len(content)}"
    status, _, _ = _raw(server, "/org/tiny-a/resolve/main/config.json", "POST")
    assert status == 405


def test_loopback_only_quiet_and_stops(layout: dict, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="loopback"):
        HubServer({}, host="0.0.0.0")
    srv = HubServer({"org/tiny-b": layout["b"]}).start()
    port = srv.port
    status, _, _ = _raw(srv, "/org/tiny-b/resolve/main/config.json")
    assert status == 200
    _raw(srv, "/org/nope/resolve/main/config.json")
    assert [r[2] for r in srv.requests] == [200, 401]
    srv.stop()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no per-request log lines unless verbose=True
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_hub_environment_restores_everything(server: HubServer, tmp_path: Path) -> None:
    from huggingface_hub import constants, hf_api

    names = ("ENDPOINT", "HUGGINGFACE_CO_URL_TEMPLATE", "HF_HUB_CACHE", "HF_HUB_OFFLINE")
    before = [getattr(constants, n) for n in names]
    env_before = {k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HUB_OFFLINE")}
    with hub_environment(endpoint=server.endpoint, cache_dir=tmp_path, offline=True):
        assert constants.ENDPOINT == server.endpoint == hf_api.api.endpoint == os.environ["HF_ENDPOINT"]
        assert constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"
        assert constants.HF_HUB_CACHE == str(tmp_path)
    assert [getattr(constants, n) for n in names] == before
    assert {k: os.environ.get(k) for k in env_before} == env_before


def test_serve_forever_in_the_calling_thread_until_stopped(layout: dict) -> None:
    from huggingface_hub import HfApi

    srv = HubServer({"org/tiny-b": layout["b"]})
    ready = threading.Event()
    seen: list[str] = []
    loop = threading.Thread(target=srv.serve_forever, kwargs={"ready": lambda ep: (seen.append(ep), ready.set())})
    loop.start()
    try:
        assert ready.wait(5)
        assert HfApi(endpoint=seen[0]).model_info("org/tiny-b").id == "org/tiny-b"
    finally:
        srv.stop()
        loop.join(5)
    assert not loop.is_alive()


def test_datasets_load_dataset_through_the_server(hub_env: Path, tmp_path: Path) -> None:
    import datasets

    loaded = datasets.load_dataset("org/tiny-ds", cache_dir=str(tmp_path / "datasets-cache"))
    assert loaded["train"]["text"] == ["hello", "world"]
