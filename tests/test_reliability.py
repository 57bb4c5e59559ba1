"""Process-level reliability and security: racing processes and pytest sessions, SIGKILLed builds,
locks of dead and live holders, corruption and disk-full through pytest, a really read-only cache
dir, trust_remote_code, pickles and download patterns.

The racing/killed processes are ``benchmarks/stress.py worker ...`` (the stress script runs the
same scenarios many more times; see benchmarks/STRESS.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_tinymodels.cache import UNSAFE_SUFFIXES, Cache, verify_entry
from pytest_tinymodels.errors import CacheError, TinyModelsError

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tiny_stress", REPO / "benchmarks" / "stress.py")
assert _spec is not None and _spec.loader is not None
stress = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stress)


@pytest.fixture
def _preload(preloaded_libraries: None) -> None:
    """In-process pytester runs need the heavy libraries imported beforehand (see conftest)."""


def _session(cache_root: Path):
    from pytest_tinymodels.manifest import load_manifest
    from pytest_tinymodels.session import TinySession

    return TinySession(load_manifest(), Cache(cache_root))


def _variant(session: Any, name: str) -> Any:
    return session.variants(name)[0]


@pytest.fixture(scope="module")
def package_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Child processes import a copy of the package taken once: cache keys include a fingerprint of
    the builder's sources, and two processes of one race must not see different edits of them."""
    src = tmp_path_factory.mktemp("package-snapshot")
    shutil.copytree(REPO / "pytest_tinymodels", src / "pytest_tinymodels", ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p))
        yield src


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Any]:
    """Start a process that takes a key's lock and holds it; killed at teardown."""
    procs: list[subprocess.Popen] = []

    def start(root: Path, key: str, seconds: float = 3600.0, label: str = "held-entry") -> subprocess.Popen:
        proc = subprocess.Popen(stress.worker_cmd("hold", root=str(root), key=key, seconds=seconds, label=label),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "LOCKED", (line, proc.stderr.read() if proc.poll() is not None else "")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# -- concurrency ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rep", range(3))
def test_eight_processes_race_for_the_same_cold_entries(tmp_path: Path, rep: int) -> None:
    result = stress.race_fake(tmp_path, procs=8, nkeys=3, rep=rep)
    assert result["builds"] == {k: 1 for k in result["builds"]} and len(result["builds"]) == 3, result
    assert all(n == 1 for n in result["distinct_digests"].values()), result
    assert all(n == 1 for n in result["built_flags"].values()), result
    assert result["leftovers"] == [] and result["ok"], result


@pytest.mark.slow
@pytest.mark.usefixtures("package_snapshot")
def test_processes_race_the_real_builder(tmp_path: Path) -> None:
    """4 processes (torch imported first, then released together) ensure+load tiny_llama in one cold cache."""
    result = stress.race_real(tmp_path, procs=4)
    assert result["builds"] == 1 and result["distinct_digests"] == 1 and result["ok"], result


@pytest.mark.slow
@pytest.mark.usefixtures("package_snapshot")
def test_two_xdist_sessions_at_once_build_each_entry_once(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    cache = tmp_path / "shared-cold-cache"
    fixtures = ("tiny_llama", "tiny_gpt2")
    pytester.makepyfile(test_race="\n".join(
        f"def test_{i}({', '.join(fixtures)}):\n    assert tiny_llama.model is not None and tiny_gpt2.model is not None\n"
        for i in range(8)))
    env = dict(os.environ, PYTEST_TINYMODELS_CACHE=str(cache))
    cmd = [sys.executable, "-m", "pytest", "-n", "4", "-p", "no:cacheprovider", "-p", "no:randomly", "test_race.py"]
    procs = [subprocess.Popen(cmd, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    summary = stress.summarize_pytest_race(outs, [p.returncode for p in procs], cache, len(fixtures))
    assert summary["built_total"] == 2 and summary["reused_total"] == 2 and summary["entries"] == 2, (summary, outs)
    assert summary["ok"], (summary, outs)
    for out in outs:
        assert "8 passed" in out, out


# -- crashes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("trial", range(3))
def test_build_killed_at_a_random_moment(tmp_path: Path, trial: int) -> None:
    result = stress.kill_trial(tmp_path, trial=trial, max_delay=0.4, seconds=0.3)
    assert result["killed"] and result["partial"] == [] and result["leftover_after"] == 0, result
    assert result["lock_wait"] < 1.0 and result["ok"], result


@pytest.mark.parametrize("die_at", ["marker", "publish"])
def test_build_killed_while_writing_the_marker_or_publishing(tmp_path: Path, die_at: str) -> None:
    result = stress.kill_trial(tmp_path, trial=0, die_at=die_at)
    assert result["killed"] and not result["published_before_kill"] and result["leftover_before"] == 1, result
    assert result["partial"] == [] and result["rebuilt"] and result["leftover_after"] == 0 and result["ok"], result


@pytest.mark.usefixtures("package_snapshot")
def test_real_build_killed_while_writing_safetensors(tmp_path: Path) -> None:
    result = stress.kill_trial(tmp_path, trial=0, real=True, die_at="safetensors")
    assert result["killed"] and not result["published_before_kill"] and result["leftover_before"] == 1, result
    half = list((tmp_path / "kill0" / "cache" / "entries").iterdir())
    assert len(half) == 1 and verify_entry(half[0]) is None  # the rebuilt one
    assert result["rebuilt"] and result["leftover_after"] == 0 and result["ok"], result


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path: Path, holder: Any) -> None:
    root, key = tmp_path / "cache", stress.fake_key("dead")
    proc = holder(root, key)
    cache = Cache(root, lock_timeout=0.3, wait_log_interval=0.1, log=lambda m: None)
    with pytest.raises(CacheError, match=f"pid {proc.pid}"):  # alive: it does block
        cache.get_or_build(key, lambda d: None)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache.lock_timeout = 5.0
    start = time.perf_counter()
    with cache._locked(key, "after-kill"):
        waited = time.perf_counter() - start
    assert waited < 0.5, f"lock of a dead process took {waited:.2f}s"


def test_waiters_log_and_time_out_on_a_live_slow_builder(tmp_path: Path, holder: Any) -> None:
    root, key = tmp_path / "cache", stress.fake_key("slow")
    proc = holder(root, key, label="LlamaForCausalLM")
    logs: list[str] = []
    cache = Cache(root, lock_timeout=1.0, wait_log_interval=0.25, log=logs.append)
    start = time.perf_counter()
    with pytest.raises(CacheError) as info:
        cache.get_or_build(key, lambda d: None, label="LlamaForCausalLM")
    assert 0.9 < time.perf_counter() - start < 5
    message = str(info.value)
    assert "gave up after" in message and "LlamaForCausalLM" in message and key in message
    assert str(cache.lock_path(key)) in message and f"pid {proc.pid}" in message
    assert len(logs) >= 2 and all(f"waiting for pid {proc.pid}" in line and "LlamaForCausalLM" in line for line in logs)


def test_waiter_proceeds_when_the_slow_builder_finishes(tmp_path: Path, holder: Any) -> None:
    root, key = tmp_path / "cache", stress.fake_key("finish")
    proc = holder(root, key, seconds=1.5)
    logs: list[str] = []
    cache = Cache(root, lock_timeout=30, wait_log_interval=0.3, log=logs.append)
    result = cache.get_or_build(key, lambda d: (d / "x.safetensors").write_bytes(b"1"))
    assert result.built and result.waited > 0.5
    assert any(f"waiting for pid {proc.pid}" in line for line in logs)


def _llama_key(cache_root: Path) -> str:
    session = _session(cache_root)
    return session.key(_variant(session, "tiny_llama").spec)


def test_lock_timeout_option_and_ini(pytester: pytest.Pytester, cold_cache: Path, holder: Any, _preload: None) -> None:
    proc = holder(cold_cache, _llama_key(cold_cache), label="LlamaForCausalLM")
    pytester.makepyfile("def test_llama(tiny_llama):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--tiny-lock-timeout", "0.5")
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "gave up after" in text and f"pid {proc.pid}" in text and ".lock" in text, text
    assert "INTERNALERROR" not in text
    pytester.makeini("[pytest]\ntiny_lock_timeout = 0.2\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(errors=1)
    pytester.makeini("[pytest]\ntiny_lock_timeout = soon\n")
    bad = pytester.runpytest("-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR and "tiny_lock_timeout" in bad.stderr.str()


def test_waiting_line_in_pytest_output(pytester: pytest.Pytester, cold_cache: Path, holder: Any, _preload: None) -> None:
    """A waiter prints ``[tinymodels] waiting for pid N ...`` (first after 2s), then builds when the lock frees (6s)."""
    proc = holder(cold_cache, _llama_key(cold_cache), seconds=6.0, label="LlamaForCausalLM")
    pytester.makepyfile("def test_llama(tiny_llama):\n    assert tiny_llama.model is not None\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([rf".*\[tinymodels\] waiting for pid {proc.pid} on .* LlamaForCausalLM.*"])
    result.stdout.re_match_lines([r"tiny_llama +built in .*waited [\d.]+s"])


# -- corruption and disk full through pytest -------------------------------------------------------
def test_corrupted_entry_is_repaired_and_reported(pytester: pytest.Pytester, cold_cache: Path, _preload: None) -> None:
    pytester.makepyfile("def test_gpt2(tiny_gpt2):\n    assert tiny_gpt2.config.n_embd > 0\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    (entry,) = (cold_cache / "entries").iterdir()
    config = entry / "repo" / "config.json"
    text = config.read_text()
    edited = re.sub(r'("n_layer": )(\d)', lambda m: m.group(1) + ("3" if m.group(2) != "3" else "4"), text)
    assert edited != text and len(edited) == len(text)  # same size: only the sha256 can tell
    config.write_text(edited)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([
        r".*\[tinymodels\] tiny-model cache entry GPT2LMHeadModel .* is damaged \(repo/config.json was modified \(sha256 mismatch\)\).*",
        r"tiny_gpt2 +built in .*repaired: repo/config.json was modified",
    ])
    assert verify_entry(entry) is None
    again = pytester.runpytest("-p", "no:cacheprovider")
    again.stdout.re_match_lines([r"tiny_gpt2 +reused"])
    assert "repaired:" not in again.stdout.str() and "damaged" not in again.stdout.str()


def test_disk_full_during_a_real_build_is_a_test_error_not_a_crash(pytester: pytest.Pytester, cold_cache: Path,
                                                                   _preload: None) -> None:
    pytester.makeconftest("""
        import errno, pytest

        @pytest.fixture(autouse=True)
        def _disk_full(monkeypatch):
            import transformers.modeling_utils as mu

            def no_space(*args, **kwargs):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(mu, "safe_save_file", no_space)
    """)
    pytester.makepyfile("def test_a(tiny_bert):\n    pass\n\ndef test_b(tiny_bert):\n    pass\n\ndef test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    text = result.stdout.str()
    assert "INTERNALERROR" not in text and "no space left on the device of the tiny-model cache" in text, text
    assert str(cold_cache) in text and "--tiny-cache-dir" in text
    assert not any((cold_cache / "entries").iterdir()) and not any((cold_cache / "tmp").iterdir())


# -- a really read-only cache dir ----------------------------------------------------------------
def _read_only_runner(ro_dir: Path) -> list[str] | None:
    """A command prefix that runs a command with ``ro_dir`` read-only for real, or None if impossible here.

    As root, chmod does not stop writes, so a private mount namespace bind-mounts the dir read-only
    (EROFS); as another user, chmod 0o555 (EACCES) is real.
    """
    if os.geteuid() != 0:
        ro_dir.chmod(0o555)
        return []
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{ro_dir}' '{ro_dir}' && "
                            f"! touch '{ro_dir}/probe' 2>/dev/null"], capture_output=True)
    if probe.returncode != 0 or (ro_dir / "probe").exists():
        return None
    return ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{ro_dir}" "{ro_dir}" && exec "$@"', "sh"]


def test_read_only_cache_dir_falls_back_with_one_warning(pytester: pytest.Pytester, tmp_path: Path) -> None:
    ro = tmp_path / "ro-cache"
    ro.mkdir()
    temp = tmp_path / "tmpdir"
    temp.mkdir()
    # Both processes import one snapshot of the package: cache keys include a fingerprint of the
    # builder's sources, which others may be editing while this suite runs.
    src = tmp_path / "src"
    shutil.copytree(REPO / "pytest_tinymodels", src / "pytest_tinymodels", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTEST_TINYMODELS_CACHE=str(ro), TMPDIR=str(temp),
               PYTHONPATH=os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p))
    # a complete entry in the (still writable) cache: it must stay usable once the dir is read-only
    prep = subprocess.run([sys.executable, "-m", "pytest_tinymodels", "build", "tiny_gpt2"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    (gpt2_key,) = [p.name for p in (ro / "entries").iterdir()]
    before = sorted(str(p.relative_to(ro)) for p in ro.rglob("*"))
    runner = _read_only_runner(ro)
    if runner is None:
        pytest.skip("cannot make a directory read-only for real here (need unshare + mount, or a non-root user)")
    pytester.makepyfile("def test_gpt2(tiny_gpt2):\n    pass\n\ndef test_bert(tiny_bert):\n    pass\n")
    proc = subprocess.run(runner + [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"],
                          cwd=pytester.path, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    fallback = temp / f"pytest-tinymodels-{os.getuid()}" / "cache"
    warnings = [line for line in out.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, out
    assert str(ro) in warnings[0] and str(fallback) in warnings[0], warnings
    assert ("Read-only file system" if os.geteuid() == 0 else "Permission denied") in warnings[0]
    assert re.search(r"^tiny_gpt2 +reused", out, re.M) and re.search(r"^tiny_bert +built in", out, re.M), out
    assert sorted(str(p.relative_to(ro)) for p in ro.rglob("*")) == before  # nothing written
    assert verify_entry(ro / "entries" / gpt2_key) is None
    (bert_entry,) = (fallback / "entries").iterdir()
    assert verify_entry(bert_entry) is None


# -- security ------------------------------------------------------------------------------------
PACKAGE = REPO / "pytest_tinymodels"


def test_sources_never_enable_remote_code_or_pickle_loading() -> None:
    sources = {p: p.read_text() for p in PACKAGE.rglob("*.py")}
    assert len(sources) > 10
    uses = 0
    for path, text in sources.items():
        for match in re.finditer(r"trust_remote_code\s*=\s*([^,)\s]+)", text):
            uses += 1
            assert match.group(1) == "False", f"{path}: trust_remote_code={match.group(1)}"
        assert not re.search(r"\*\*\s*\{[^}]*trust_remote_code", text), path
        assert not re.search(r"\btorch\.load\(|\bpickle\.loads?\(|weights_only\s*=\s*False|use_safetensors\s*=\s*False",
                             text), path
    assert uses >= 3  # config, tokenizer and model loading all say it explicitly


def _evil_repo(root: Path, marker: Path, model_type: str) -> Path:
    """A hub-style repo whose config asks for custom code that would write ``marker``."""
    root.mkdir(parents=True)
    payload = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('code ran')\n"
    for module in ("configuration_evil", "modeling_evil", "tokenization_evil"):
        (root / f"{module}.py").write_text(payload + "class EvilConfig: pass\nclass EvilModel: pass\nclass EvilTok: pass\n")
    config = {"model_type": model_type, "architectures": ["EvilModel"],
              "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel",
                           "AutoModelForCausalLM": "modeling_evil.EvilModel"}}
    (root / "config.json").write_text(json.dumps(config))
    (root / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTok", None]},
                                                            "tokenizer_class": "EvilTok"}))
    return root


def test_custom_code_in_a_source_repo_is_never_executed(tmp_path: Path, _preload: None) -> None:
    from pytest_tinymodels.manifest import Manifest, parse_manifest_text
    from pytest_tinymodels.session import TinySession

    marker = tmp_path / "pwned"
    repo = _evil_repo(tmp_path / "evil", marker, "evil_tiny")
    specs = parse_manifest_text(f"[fixtures.tiny_evil]\nsource = {json.dumps(str(repo))}\n", tmp_path / "f.toml")
    session = TinySession(Manifest(specs), Cache(tmp_path / "cache"))
    with pytest.raises(TinyModelsError):
        session.ensure(session.variants("tiny_evil")[0])
    assert not marker.exists()
    assert not any((tmp_path / "cache" / "entries").iterdir())


def test_loader_ignores_auto_map_of_a_cached_entry(tmp_path: Path, shared_cache: Path, _preload: None) -> None:
    from pytest_tinymodels.loader import LoadedEntry

    session = _session(shared_cache)
    source = session.ensure(_variant(session, "tiny_llama")).path
    marker = tmp_path / "pwned"
    entry = tmp_path / "entry"
    shutil.copytree(source, entry)
    for module in ("configuration_evil", "modeling_evil"):
        (entry / "repo" / f"{module}.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    config = json.loads((entry / "repo" / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (entry / "repo" / "config.json").write_text(json.dumps(config))
    triple = LoadedEntry("tiny_llama", entry).load()  # built-in llama classes; the remote code is ignored
    assert type(triple.model).__name__ == "LlamaForCausalLM"
    config["model_type"] = "evil_tiny"
    (entry / "repo" / "config.json").write_text(json.dumps(config))
    recipe = json.loads((entry / "recipe.json").read_text())
    recipe["architecture"] = "EvilModel"
    (entry / "recipe.json").write_text(json.dumps(recipe))
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do, as long as no code runs
        LoadedEntry("tiny_evil", entry).load()
    assert not marker.exists()


def test_entries_hold_only_safetensors_and_pickles_are_refused(tmp_path: Path, shared_cache: Path, _preload: None) -> None:
    import torch
    from safetensors.torch import load_file

    session = _session(shared_cache)
    for name in ("tiny_llama", "tiny_gpt2"):
        path = session.ensure(_variant(session, name)).path
        files = [p for p in path.rglob("*") if p.is_file()]
        assert not [p for p in files if p.suffix.lower() in UNSAFE_SUFFIXES], files
        assert [p.name for p in files if p.name.endswith(".safetensors")] == ["model.safetensors"]
    # an entry whose weights were swapped for a pickle is refused and rebuilt, never loaded
    cache_root = tmp_path / "cache"
    shutil.copytree(shared_cache / "entries", cache_root / "entries")
    own = _session(cache_root)
    variant = _variant(own, "tiny_llama")
    entry = own.cache.entry_dir(own.key(variant.spec))
    weights = entry / "repo" / "model.safetensors"
    torch.save(load_file(weights), entry / "repo" / "pytorch_model.bin")
    weights.unlink()
    marker = json.loads((entry / "COMPLETE.json").read_text())
    marker["files"].pop("repo/model.safetensors")
    pickled = entry / "repo" / "pytorch_model.bin"  # a consistent marker: sizes and hashes all match
    marker["files"]["repo/pytorch_model.bin"] = {"size": pickled.stat().st_size,
                                                 "sha256": hashlib.sha256(pickled.read_bytes()).hexdigest()}
    (entry / "COMPLETE.json").write_text(json.dumps(marker))
    assert "pickle" in (verify_entry(entry) or "")
    result = own.ensure(variant)
    assert result.built and result.repaired and "pickle" in result.repaired
    assert (entry / "repo" / "model.safetensors").is_file() and not (entry / "repo" / "pytorch_model.bin").exists()
    assert own.load(variant).fresh().model is not None


def test_download_patterns_admit_no_code_and_no_pickle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    from pytest_tinymodels.hub import client as hub

    names = ["config.json", "model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
             "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.txt", "merges.txt", "README.md",
             "pytorch_model.bin", "model.pt", "model.pth", "weights.pkl", "x.pickle", "model.ckpt", "tf_model.h5",
             "flax_model.msgpack", "arr.npy", "arr.npz", "m.joblib", "modeling_evil.py", "configuration_x.py",
             "sub/modeling.py", "__pycache__/x.pyc", "1_Pooling/config.json", "sub/pytorch_model.bin"]
    unsafe = {n for n in names if n.endswith((".py", ".pyc") + UNSAFE_SUFFIXES)}
    for patterns in (hub.ALLOWED_DOWNLOAD_PATTERNS, hub.CONFIG_AND_TOKENIZER_PATTERNS, hub.DATASET_DOWNLOAD_PATTERNS):
        kept = set(filter_repo_objects(names, allow_patterns=list(patterns), ignore_patterns=list(hub.BLOCKED_PATTERNS)))
        assert not kept & unsafe, kept & unsafe
    kept = set(filter_repo_objects(names, allow_patterns=list(hub.ALLOWED_DOWNLOAD_PATTERNS),
                                   ignore_patterns=list(hub.BLOCKED_PATTERNS)))
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model", "model.safetensors.index.json"} <= kept
    config_only = set(filter_repo_objects(names, allow_patterns=list(hub.CONFIG_AND_TOKENIZER_PATTERNS)))
    assert not any(n.endswith(".safetensors") for n in config_only) and "config.json" in config_only
    # and the block list is really passed to snapshot_download
    calls: list[dict[str, Any]] = []

    def fake_snapshot(repo_id: str, **kwargs: Any) -> str:
        calls.append(kwargs)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.download_repo("org/name")
    hub.fetch_source("org/other")
    assert len(calls) == 2
    assert calls[0]["allow_patterns"] == list(hub.ALLOWED_DOWNLOAD_PATTERNS)
    assert calls[1]["allow_patterns"] == list(hub.CONFIG_AND_TOKENIZER_PATTERNS)
    for call in calls:
        assert call["ignore_patterns"] == list(hub.BLOCKED_PATTERNS)
        assert {"*.bin", "*.pt", "*.pth", "*.pkl", "*.py"} <= set(call["ignore_patterns"])


def test_loader_itself_refuses_an_entry_with_only_pickle_weights(tmp_path: Path, shared_cache: Path, _preload: None) -> None:
    import torch
    from safetensors.torch import load_file

    from pytest_tinymodels.loader import LoadedEntry

    session = _session(shared_cache)
    entry = tmp_path / "entry"
    shutil.copytree(session.ensure(_variant(session, "tiny_llama")).path, entry)
    weights = entry / "repo" / "model.safetensors"
    torch.save(load_file(weights), entry / "repo" / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(Exception):  # noqa: B017 - any refusal: only safetensors are ever loaded
        LoadedEntry("tiny_llama", entry).load()


def test_using_a_fixture_dataset_writes_nothing_into_the_cache(tmp_path: Path, _preload: None) -> None:
    session = _session(tmp_path / "cache")
    variant = _variant(session, "tiny_gpt2")
    entry = session.ensure(variant).path
    before = sorted(p.relative_to(entry) for p in entry.rglob("*"))
    dataset = session.load(variant).fresh().dataset
    mapped = dataset.map(lambda row: {"n": len(row["text"])})
    assert len(mapped) == len(dataset)
    assert sorted(p.relative_to(entry) for p in entry.rglob("*")) == before
