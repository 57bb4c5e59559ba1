"""dtype (float32/float16/bfloat16) and device (cpu/cuda/auto) through manifest, options, builder and loader.

Tests marked ``cuda`` need a GPU and are skipped with a reason where none exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from pytest_tinymodels.cache import Cache  # noqa: E402
from pytest_tinymodels.loader import LoadedEntry, resolve_device  # noqa: E402
from pytest_tinymodels.manifest import load_manifest  # noqa: E402
from pytest_tinymodels.session import TinySession  # noqa: E402

HAS_CUDA = torch.cuda.is_available()


def needs_cuda(func):
    """Mark a test ``cuda`` and skip it, with a reason, where no GPU exists."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU; none is available here")(func))


DTYPES = ("float32", "float16", "bfloat16")
SAFETENSORS_DTYPE = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


@pytest.fixture(autouse=True)
def _preload(preloaded_libraries: None) -> None:
    """In-process pytester runs need the heavy libraries imported beforehand (see conftest)."""


def session_for(cache: Path, *, dtype: str | None = None, device: str | None = None) -> TinySession:
    return TinySession(load_manifest(None), Cache(cache), dtype=dtype, device=device)


def loaded(cache: Path, name: str, *, dtype: str | None = None, device: str | None = None) -> LoadedEntry:
    session = session_for(cache, dtype=dtype, device=device)
    return session.load(session.variants(name)[0])


def safetensors_dtypes(repo: Path) -> set[str]:
    """The dtypes recorded in the safetensors header (read as JSON, no torch involved)."""
    found = set()
    for path in repo.glob("*.safetensors"):
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(size))
        found |= {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    return found


def batch_of(tokenizer, dataset, device: str, rows: int = 4) -> dict:
    batch = tokenizer(dataset["text"][:rows], padding=True, truncation=True, max_length=24, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def one_training_step(model, batch: dict) -> tuple[float, float]:
    """Loss before and after one AdamW step on ``batch`` (labels = inputs, padding ignored)."""
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(**batch, labels=labels).loss
    assert torch.isfinite(loss), loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == model.dtype for g in grads)
    optimizer.step()
    with torch.no_grad():
        after = model(**batch, labels=labels).loss
    return float(loss.detach()), float(after)


# -- builds in each dtype (CPU) ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_dtype_entry_is_saved_and_loaded_in_that_dtype(shared_cache: Path, dtype: str) -> None:
    full = loaded(shared_cache, "tiny_llama", dtype="float32").load()
    half = loaded(shared_cache, "tiny_llama", dtype=dtype).load()
    assert half.entry != full.entry  # dtype is part of the cache key
    assert safetensors_dtypes(half.path) == {SAFETENSORS_DTYPE[dtype]}
    assert safetensors_dtypes(full.path) == {"F32"}
    assert json.loads((half.path / "config.json").read_text())["dtype"] == dtype
    assert {p.dtype for p in half.model.parameters()} == {getattr(torch, dtype)}
    ratio = (half.path / "model.safetensors").stat().st_size / (full.path / "model.safetensors").stat().st_size
    assert 0.48 < ratio < 0.53, ratio  # half the bytes, plus the same small JSON header
    # built in float32 from the same seed, then cast: the half weights are the float32 ones rounded
    full_state, half_state = full.model.state_dict(), half.model.state_dict()
    assert full_state.keys() == half_state.keys()
    for key, value in half_state.items():
        assert torch.equal(value, full_state[key].to(value.dtype)), key


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_dtype_repo_loads_in_its_dtype_with_plain_from_pretrained(shared_cache: Path, dtype: str) -> None:
    """The entry is a hub-style repo: a hand-written ``from_pretrained`` sees the same dtype."""
    from transformers import AutoModelForCausalLM

    path = loaded(shared_cache, "tiny_llama", dtype=dtype).load().path
    assert AutoModelForCausalLM.from_pretrained(str(path)).dtype == getattr(torch, dtype)


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gpt2", "tiny_bert", "tiny_t5"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_dtype_forward_on_cpu(shared_cache: Path, name: str, dtype: str) -> None:
    """torch 2.13 runs both half types on CPU (fp16 matmul included): logits are finite."""
    model, tokenizer, dataset = loaded(shared_cache, name, dtype=dtype).fresh()
    batch = batch_of(tokenizer, dataset, "cpu", rows=2)
    extra = {"decoder_input_ids": batch["input_ids"]} if model.config.is_encoder_decoder else {}
    with torch.no_grad():
        logits = model(**batch, **extra).logits
    assert logits.dtype == getattr(torch, dtype)
    assert torch.isfinite(logits).all()


def test_bfloat16_training_step_on_cpu(shared_cache: Path) -> None:
    model, tokenizer, dataset = loaded(shared_cache, "tiny_gpt2", dtype="bfloat16").fresh()
    before, after = one_training_step(model, batch_of(tokenizer, dataset, "cpu"))
    assert after < before


# -- device resolution -------------------------------------------------------------------------
@pytest.mark.parametrize(("available", "expected"), [(True, "cuda"), (False, "cpu")])
def test_auto_device_picks_cuda_when_available(monkeypatch: pytest.MonkeyPatch, available: bool, expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"


def test_auto_device_loads_where_auto_points(shared_cache: Path) -> None:
    entry = loaded(shared_cache, "tiny_bert", device="auto")
    assert entry.device == ("cuda" if HAS_CUDA else "cpu")
    assert entry.fresh().model.device.type == entry.device


# -- fresh copies stay independent (loader's cheap copy path) ----------------------------------
def test_fresh_copies_share_no_mutable_state(shared_cache: Path) -> None:
    entry = loaded(shared_cache, "tiny_llama")
    a, b = entry.fresh(), entry.fresh()
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb) and pa.data_ptr() != pb.data_ptr()
    a.model.model.layers[0].register_forward_hook(lambda *args: None)
    a.model.model.layers[0].mlp.custom_attribute = 1
    assert not b.model.model.layers[0]._forward_hooks
    assert not entry.load().model.model.layers[0]._forward_hooks
    a.tokenizer.add_tokens(["<only_in_a>"])
    for attr in ("_vocab", "_merges"):
        if hasattr(a.tokenizer, attr):
            assert getattr(a.tokenizer, attr) is not getattr(b.tokenizer, attr)
            assert getattr(a.tokenizer, attr) == getattr(b.tokenizer, attr)
    assert "<only_in_a>" not in b.tokenizer.get_vocab()
    assert "<only_in_a>" not in entry.fresh().tokenizer.get_vocab()
    a.model.config.hidden_act = "changed"
    assert b.model.config.hidden_act != "changed"


# -- options through pytest --------------------------------------------------------------------
DTYPE_PROBE = """
import json
from pathlib import Path

def test_probe(tiny_gpt2):
    model, tokenizer, dataset = tiny_gpt2
    seen = [str(next(model.parameters()).dtype), model.device.type, tiny_gpt2.entry.name]
    Path("probe.json").write_text(json.dumps(seen))
"""


def probe(pytester: pytest.Pytester) -> tuple[str, str, str]:
    """(parameter dtype, device type, cache key) seen by the inner test of the last run."""
    path = pytester.path / "probe.json"
    dtype, device, key = json.loads(path.read_text())
    path.unlink()
    return dtype, device, key


def test_manifest_dtype_and_tiny_dtype_option(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='[fixtures.tiny_gpt2]\nmodel_type = "gpt2"\ndtype = "float16"\n')
    pytester.makepyfile(DTYPE_PROBE)
    from_manifest = pytester.runpytest("-p", "no:cacheprovider")
    from_manifest.assert_outcomes(passed=1)
    assert (seen_manifest := probe(pytester))[:2] == ("torch.float16", "cpu")
    overridden = pytester.runpytest("-p", "no:cacheprovider", "--tiny-dtype", "bfloat16")
    overridden.assert_outcomes(passed=1)
    seen = probe(pytester)
    assert seen[:2] == ("torch.bfloat16", "cpu")
    assert seen[2] != seen_manifest[2]  # a separate cache entry
    entry = cache_env / "entries" / seen[2]
    assert safetensors_dtypes(entry / "repo") == {"BF16"}
    bad = pytester.runpytest("--tiny-dtype", "float64")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "float64" in bad.stderr.str() and "bfloat16" in bad.stderr.str()


def test_tiny_device_cpu_overrides_manifest_cuda(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='[fixtures.tiny_gpt2]\nmodel_type = "gpt2"\ndevice = "cuda"\n')
    pytester.makepyfile(DTYPE_PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--tiny-device", "cpu")
    result.assert_outcomes(passed=1)
    assert probe(pytester)[:2] == ("torch.float32", "cpu")


def test_manifest_device_cuda_runs_on_gpu_or_skips_with_reason(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='[fixtures.tiny_gpt2]\nmodel_type = "gpt2"\ndevice = "cuda"\n')
    pytester.makepyfile(DTYPE_PROBE)
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    if HAS_CUDA:
        result.assert_outcomes(passed=1)
        assert probe(pytester)[1] == "cuda"
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*tiny_gpt2*needs CUDA*no GPU is available*"])


def test_tiny_device_auto(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makepyfile(DTYPE_PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--tiny-device", "auto")
    result.assert_outcomes(passed=1)
    assert probe(pytester)[1] == ("cuda" if HAS_CUDA else "cpu")


# -- on a GPU ----------------------------------------------------------------------------------
@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gpt2"])
def test_cuda_forward_and_training_step(shared_cache: Path, name: str, dtype: str) -> None:
    model, tokenizer, dataset = loaded(shared_cache, name, dtype=dtype, device="cuda").fresh()
    assert model.device.type == "cuda" and model.dtype == getattr(torch, dtype)
    batch = batch_of(tokenizer, dataset, "cuda")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.device.type == "cuda" and logits.dtype == getattr(torch, dtype)
    assert torch.isfinite(logits).all()
    before, after = one_training_step(model, batch)
    assert after < before


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_generate(shared_cache: Path, dtype: str) -> None:
    model, tokenizer, dataset = loaded(shared_cache, "tiny_llama", dtype=dtype, device="cuda").fresh()
    ids = tokenizer(dataset[0]["text"], return_tensors="pt").input_ids.to("cuda")
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)
    assert out.device.type == "cuda" and out.shape == (1, ids.shape[1] + 5)
    assert int(out.max()) < model.config.vocab_size


@needs_cuda
def test_cuda_matches_cpu_in_float32(shared_cache: Path) -> None:
    cpu_model, tokenizer, dataset = loaded(shared_cache, "tiny_llama", device="cpu").fresh()
    gpu_model = loaded(shared_cache, "tiny_llama", device="cuda").fresh().model
    batch = batch_of(tokenizer, dataset, "cpu")
    with torch.no_grad():
        cpu_logits = cpu_model(**batch).logits
        gpu_logits = gpu_model(**{k: v.cuda() for k, v in batch.items()}).logits.cpu()
    torch.testing.assert_close(gpu_logits, cpu_logits, rtol=1e-3, atol=1e-3)


def test_half_builds_keep_fp32_modules_and_feed_inputs_in_the_model_dtype(tmp_path: Path) -> None:
    """``_keep_in_fp32_modules_strict`` (Inkling2's float32 MoE router) stays float32 in a bfloat16 entry, as
    ``from_pretrained(dtype=bfloat16)`` would keep it; a bfloat16 draft model (Gemma 4 assistant) gets its
    ``inputs_embeds`` in bfloat16 from the smoke inputs."""
    from safetensors import safe_open

    from pytest_tinymodels.build.inputs import dummy_inputs

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.lm]\ntask = "causal-lm"\ndtype = "bfloat16"\n'
                        'architectures = ["inkling2_text", "gemma4_assistant"]\n')
    session = TinySession(load_manifest(manifest), Cache(tmp_path / "c"))
    triples = {v.id: session.load(v).fresh() for v in session.variants("lm")}
    inkling, assistant = triples["inkling2_text"], triples["gemma4_assistant"]
    router = [n for n, _ in inkling.model.named_parameters() if n.endswith("gate.weight")]
    assert router and all(dict(inkling.model.named_parameters())[n].dtype == torch.float32 for n in router)
    with safe_open(str(inkling.path / "model.safetensors"), "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F32", "BF16"}  # saved mixed, as loaded
    inputs = dummy_inputs(assistant.model)
    assert inputs["inputs_embeds"].dtype == torch.bfloat16
    assert torch.isfinite(assistant.model(**inputs).logits).all()
