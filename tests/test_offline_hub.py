"""Offline hub: unmodified code loading Hub ids gets tiny repos, with no network.

The outer environment points ``HF_ENDPOINT`` at a closed loopback port, so any request that
escaped the tiny hub would fail at once instead of reaching a network.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_tinymodels.errors import ManifestError
from pytest_tinymodels.hub.registry import HubRule, load_hub_registry
from pytest_tinymodels.hub.repos import materialize
from pytest_tinymodels.hub.server import hub_environment
from pytest_tinymodels.manifest import load_manifest

MANIFEST = """
[fixtures.tiny_gpt2]
model_type = "gpt2"
hub_id = "org/tiny-gpt2"

[fixtures.small_ds]
model_type = "gpt2"
dataset = { rows = 5 }

[hub]
datasets = { "org/tiny-ds" = "small_ds" }
"""

UNMODIFIED_SUITE = """
import json
import os

import datasets
import pytest
from huggingface_hub import hf_hub_download, snapshot_download
from transformers import AutoModelForCausalLM, AutoTokenizer

LLAMA = "hf-internal-testing/tiny-random-LlamaForCausalLM"


def test_rule_derived_model_and_tokenizer():
    model = AutoModelForCausalLM.from_pretrained(LLAMA)
    tokenizer = AutoTokenizer.from_pretrained(LLAMA)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.num_parameters() < 2_000_000
    ids = tokenizer("hello world", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 3


def test_declared_model_downloads():
    assert type(AutoModelForCausalLM.from_pretrained("org/tiny-gpt2")).__name__ == "GPT2LMHeadModel"
    with open(hf_hub_download("org/tiny-gpt2", "config.json")) as f:
        assert json.load(f)["model_type"] == "gpt2"
    snapshot = snapshot_download("org/tiny-gpt2")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(snapshot))


def test_declared_dataset():
    ds = datasets.load_dataset("org/tiny-ds", split="train")
    assert ds.num_rows == 5 and ds.column_names == ["text"]


def test_undeclared_id_is_not_found():
    with pytest.raises(OSError, match=MISSING):  # the library's own error
        AutoModelForCausalLM.from_pretrained("nobody/not-declared")
"""
SERVE_MISSING = 'MISSING = "not a valid model identifier"\n'  # the Hub answered "repository not found"
OFFLINE_MISSING = 'MISSING = "couldn.t find them in the cached files"\n'  # offline: not in the cache


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """HF_ENDPOINT at a closed loopback port, a private HF cache, online mode: escapes fail fast."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    cache = tmp_path / "outer-hf-cache"
    with hub_environment(endpoint=endpoint, cache_dir=cache, offline=False):
        yield {"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache)}


def _hub_state() -> dict:
    from huggingface_hub import constants

    keys = ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_HUB_ETAG_TIMEOUT", "HF_DATASETS_CACHE")
    return {
        "env": {k: os.environ.get(k) for k in keys},
        "constants": (constants.ENDPOINT, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE,
                      constants.HF_HUB_ETAG_TIMEOUT),
    }


# --------------------------------------------------------------------------- pytest --tiny-hub


def test_tiny_hub_serves_an_unmodified_suite(pytester: pytest.Pytester, preloaded_libraries: None,
                                             cache_env: Path, no_network: dict) -> None:
    pytester.makefile(".toml", fixtures=MANIFEST)
    pytester.makepyfile(test_unmodified=SERVE_MISSING + UNMODIFIED_SUITE)
    before = _hub_state()
    result = pytester.runpytest("--tiny-hub", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*tinymodels: tiny hub serving on http://127.0.0.1:*",
        "*- tiny hub -*",
        "dataset org/tiny-ds * fixture small_ds *",
        "model   hf-internal-testing/tiny-random-LlamaForCausalLM * LlamaForCausalLM *built-in rule*",
        "model   nobody/not-declared * not served (* request*)*[[]hub.ids[]] \"nobody/not-declared\" = *",
    ])
    assert _hub_state() == before  # environment and huggingface_hub constants restored
    assert not (Path(no_network["HF_HUB_CACHE"])).exists()  # nothing went to the outer cache


def test_tiny_hub_offline_prebuilds_declared_ids(pytester: pytest.Pytester, preloaded_libraries: None,
                                                 cache_env: Path, no_network: dict) -> None:
    pytester.makefile(".toml", fixtures=MANIFEST + 'ids = { "hf-internal-testing/tiny-random-LlamaForCausalLM" = "LlamaForCausalLM" }\n')
    pytester.makepyfile(test_unmodified=OFFLINE_MISSING + UNMODIFIED_SUITE + """

def test_it_is_an_offline_hub_cache():
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE and os.environ["HF_HUB_OFFLINE"] == "1"
    repo = os.path.join(constants.HF_HUB_CACHE, "models--org--tiny-gpt2")
    sha = open(os.path.join(repo, "refs", "main")).read()
    link = os.path.join(repo, "snapshots", sha, "config.json")
    assert os.path.islink(link) and os.path.realpath(link).startswith(os.path.join(repo, "blobs"))


def test_undeclared_rule_id_is_not_cached():
    with pytest.raises(OSError):
        AutoModelForCausalLM.from_pretrained("hf-internal-testing/tiny-random-BertForMaskedLM")
""")
    before = _hub_state()
    result = pytester.runpytest("--tiny-hub-offline", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*tinymodels: tiny hub offline cache * (HF_HUB_CACHE, HF_HUB_OFFLINE=1; 4 declared ids*"])
    assert _hub_state() == before


def test_ini_tiny_hub_and_bad_values(pytester: pytest.Pytester, preloaded_libraries: None, cache_env: Path,
                                     no_network: dict) -> None:
    pytester.makepyfile("""
        import os
        from huggingface_hub import hf_hub_download

        def test_endpoint():
            assert os.environ["HF_ENDPOINT"].startswith("http://127.0.0.1:")
            assert hf_hub_download("peft-internal-testing/tiny-random-BertModel", "config.json")
    """)
    pytester.makeini("[pytest]\ntiny_hub = true\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ntiny_hub = maybe\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tiny_hub must be true, false, serve or offline*'maybe'*"])


def test_bad_hub_table_is_a_usage_error(pytester: pytest.Pytester, preloaded_libraries: None, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='[hub]\nids = { "org/x" = "NotAnArchitectureAtAll" }\n')
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--tiny-hub", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*fixtures.toml*hub.ids.\"org/x\"*neither a fixture name, an architecture class nor a model type*"])


def test_a_repo_that_cannot_be_built_is_reported(pytester: pytest.Pytester, preloaded_libraries: None,
                                                 cache_env: Path, no_network: dict) -> None:
    pytester.makefile(".toml", fixtures='[hub.ids]\n"org/broken" = { download = "nobody/missing-source" }\n')
    pytester.makepyfile("""
        import pytest
        from transformers import AutoConfig

        def test_broken():
            with pytest.raises(OSError, match="not a valid model identifier"):
                AutoConfig.from_pretrained("org/broken")
    """)
    result = pytester.runpytest("--tiny-hub", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["model   org/broken * NOT SERVED: *nobody/missing-source*"])


def test_source_and_download_fixtures_still_fetch_from_the_real_hub(
    pytester: pytest.Pytester, preloaded_libraries: None, shared_cache: Path, cold_cache: Path, tmp_path: Path
) -> None:
    """A fixture built from a real repo reads it from the Hub the session started with (here a loopback
    "upstream" hub), not from the tiny hub that HF_ENDPOINT points at during the session."""
    from pytest_tinymodels.cache import Cache
    from pytest_tinymodels.hub.server import HubServer
    from pytest_tinymodels.session import TinySession

    session = TinySession(load_manifest(None), Cache(shared_cache))
    repo = session.ensure(session.variants("tiny_gpt2")[0]).path / "repo"
    pytester.makefile(".toml", fixtures="""
        [fixtures.downloaded]
        download = "upstream/src-gpt2"
        hub_id = "org/downloaded"

        [fixtures.shrunk_from_source]
        source = "upstream/src-gpt2"
    """)
    pytester.makepyfile("""
        from transformers import AutoModelForCausalLM

        def test_hub_id_of_a_download_fixture():
            assert type(AutoModelForCausalLM.from_pretrained("org/downloaded")).__name__ == "GPT2LMHeadModel"

        def test_source_fixture(shrunk_from_source):
            assert type(shrunk_from_source.model).__name__ == "GPT2LMHeadModel"
    """)
    with HubServer({"upstream/src-gpt2": repo}) as upstream, \
            hub_environment(endpoint=upstream.endpoint, cache_dir=tmp_path / "upstream-cache", offline=False):
        result = pytester.runpytest("--tiny-hub", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    fetched = {path for _, path, status in upstream.requests if status == 200}
    assert any("/upstream/src-gpt2/resolve/" in p for p in fetched), sorted(fetched)


# --------------------------------------------------------------------------- serve, across processes


def test_serve_subprocess_used_by_another_process(tmp_path: Path, cache_env: Path, no_network: dict) -> None:
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text(MANIFEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "pytest_tinymodels", "serve", "--port", "0", "--manifest", str(manifest)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = server.stdout.readline()  # "serving the tiny hub on http://127.0.0.1:PORT"
        assert line.startswith("serving the tiny hub on http://127.0.0.1:"), line + server.stderr.read()
        endpoint = line.split()[-1]
        client_env = dict(env, HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(tmp_path / "client-cache"),
                          HF_DATASETS_CACHE=str(tmp_path / "client-datasets"))
        code = """
import datasets, json
from huggingface_hub import hf_hub_download
from transformers import AutoModelForCausalLM, AutoTokenizer
m = AutoModelForCausalLM.from_pretrained("hf-internal-testing/tiny-random-gpt2")
t = AutoTokenizer.from_pretrained("org/tiny-gpt2")
d = datasets.load_dataset("org/tiny-ds", split="train")
try:
    AutoTokenizer.from_pretrained("nobody/not-declared")
    missing = "loaded?!"
except OSError as exc:
    missing = str(exc).splitlines()[0]
print(json.dumps({"model": type(m).__name__, "vocab": len(t), "rows": d.num_rows, "missing": missing}))
"""
        client = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=client_env, timeout=300)
        assert client.returncode == 0, client.stderr[-3000:]
        out = json.loads(client.stdout.strip().splitlines()[-1])
        assert out["model"] == "GPT2LMHeadModel" and out["rows"] == 5 and 0 < out["vocab"] <= 1024
        assert "nobody/not-declared is not a local folder and is not a valid model identifier" in out["missing"]
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "serving model hf-internal-testing/tiny-random-gpt2" in err
    assert "not declared: model nobody/not-declared" in err


def test_serve_list_and_port_in_use(tmp_path: Path, cache_env: Path) -> None:
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text(MANIFEST)
    listed = subprocess.run([sys.executable, "-m", "pytest_tinymodels", "serve", "--list", "--manifest", str(manifest)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "model    org/tiny-gpt2" in listed.stdout and "dataset  org/tiny-ds" in listed.stdout
    assert "hf-internal-testing/tiny-random-{arch}" in listed.stdout
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.perf_counter()
        taken = subprocess.run([sys.executable, "-m", "pytest_tinymodels", "serve", "--port", str(port),
                                "--manifest", str(manifest)], capture_output=True, text=True, timeout=120)
    assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    assert time.perf_counter() - start < 60


# --------------------------------------------------------------------------- registry and cache layout


def _registry(tmp_path: Path, text: str):
    path = tmp_path / "fixtures.toml"
    path.write_text(text)
    return load_hub_registry(load_manifest(path))


def test_rules_resolve_class_names_model_types_and_suffixes(tmp_path: Path) -> None:
    reg = _registry(tmp_path, '[hub]\nrules = ["myorg/tiny-{arch}"]\n')

    def spec_of(repo_id: str):
        target = reg.resolve("model", repo_id)
        return None if target is None else (target.spec.architecture, target.spec.model_type)

    assert spec_of("hf-internal-testing/tiny-random-BertForSequenceClassification") == ("BertForSequenceClassification", None)
    assert spec_of("peft-internal-testing/tiny-random-gpt2") == (None, "gpt2")
    assert spec_of("trl-internal-testing/tiny-Qwen2ForCausalLM-2.5") == ("Qwen2ForCausalLM", None)
    assert spec_of("myorg/tiny-OPTForCausalLM") == ("OPTForCausalLM", None)
    assert spec_of("sshleifer/tiny-gpt2") == ("GPT2LMHeadModel", None)  # built-in alias
    assert spec_of("hf-internal-testing/tiny-random-bert") == ("BertModel", None)  # alias before the rule
    assert spec_of("hf-internal-testing/tiny-random-NoSuchClassAnywhere") is None
    assert spec_of("peft-internal-testing/tiny-random-BertModel-lora") is None  # adapters are not base models
    assert reg.resolve("dataset", "hf-internal-testing/tiny-random-gpt2") is None  # rules are for models
    off = _registry(tmp_path, "[hub]\nbuiltin = false\n")
    assert off.resolve("model", "hf-internal-testing/tiny-random-gpt2") is None


def test_hub_ids_table_forms_and_fixture_hub_id(tmp_path: Path) -> None:
    reg = _registry(tmp_path, """
        [defaults]
        seed = 7
        [fixtures.mine]
        model_type = "llama"
        hub_id = ["org/a", "org/b"]
        [hub.ids]
        "org/cls" = "BertForMaskedLM"
        "org/mt" = "t5"
        "org/fx" = "mine"
        "org/tbl" = { model_type = "bert", task = "masked-lm", config = { num_hidden_layers = 1 } }
        [hub.datasets]
        "org/ds" = { fixture = "mine" }
    """.replace("\n        ", "\n"))
    declared = {(t.repo_type, t.repo_id): t for t in reg.declared()}
    assert set(declared) == {("model", "org/a"), ("dataset", "org/a"), ("model", "org/b"), ("dataset", "org/b"),
                             ("model", "org/cls"), ("model", "org/mt"), ("model", "org/fx"), ("model", "org/tbl"),
                             ("dataset", "org/ds")}
    assert declared[("model", "org/fx")].fixture == "mine" and declared[("dataset", "org/ds")].fixture == "mine"
    tbl = declared[("model", "org/tbl")].spec
    assert (tbl.model_type, tbl.task, dict(tbl.config), tbl.seed) == ("bert", "masked-lm", {"num_hidden_layers": 1}, 7)
    assert reg.resolve("model", "ORG/CLS").spec.architecture == "BertForMaskedLM"  # ids are case-insensitive


@pytest.mark.parametrize(("text", "field", "fragment"), [
    ('[hub]\nidz = {}\n', "hub.idz", "did you mean 'ids'"),
    ('[hub]\nids = { "not-an-id" = "gpt2" }\n', 'hub.ids."not-an-id"', "not a hub repo id"),
    ('[hub]\nids = { "org/x" = 3 }\n', 'hub.ids."org/x"', "must be a string or a table"),
    ('[hub]\nids = { "org/x" = { model_type = "bert", hub_id = "a/b" } }\n', 'hub.ids."org/x".hub_id', "not allowed"),
    ('[hub]\nids = { "org/x" = { model_type = "bert", dtype = "int3" } }\n', 'hub.ids."org/x".dtype', "not one of"),
    ('[hub]\nrules = ["org/{arch}-tiny"]\n', "hub.rules[0]", "bad rule"),
    ('[hub]\nbuiltin = "yes"\n', "hub.builtin", "true or false"),
    ('[fixtures.a]\nmodel_type = "gpt2"\nhub_id = "org/x"\n[hub]\nids = { "org/X" = "gpt2" }\n', "hub_id", "declared twice"),
    ('[fixtures.p]\ntask = "causal-lm"\narchitectures = ["llama"]\nhub_id = "org/p"\n', "hub_id", "parametrized"),
])
def test_hub_table_errors_name_the_field(tmp_path: Path, text: str, field: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        _registry(tmp_path, text)
    assert info.value.field == field and fragment in str(info.value)
    assert info.value.path == tmp_path / "fixtures.toml"


def test_rule_patterns_must_end_with_arch() -> None:
    with pytest.raises(ValueError):
        HubRule.compile("org/tiny-{arch}-x", "test")
    assert HubRule.compile("org/t-{arch}{suffix}", "test").candidates("org/t-A-b-c") == ["A-b-c", "A-b", "A"]


def test_materialized_cache_is_read_by_huggingface_hub_offline(tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download

    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "config.json").write_text('{"model_type": "gpt2"}')
    (repo / "model.safetensors").write_bytes(b"\0" * 64)
    (repo / "sub" / "notes.txt").write_text("nested")
    cache = tmp_path / "hub-cache"
    sha = materialize(cache, "model", "org/m", repo)
    assert (cache / "models--org--m" / "refs" / "main").read_text() == sha
    with hub_environment(cache_dir=cache, offline=True):
        assert Path(hf_hub_download("org/m", "sub/notes.txt")).read_text() == "nested"
        snap = Path(snapshot_download("org/m"))
    assert snap.name == sha
    assert sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()) == [
        "config.json", "model.safetensors", "sub/notes.txt"]
    assert materialize(cache, "model", "org/m", repo) == sha  # idempotent
