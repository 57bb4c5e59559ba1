"""The warm load path (issue 17): gc.freeze() before the first load, and the fast loader against from_pretrained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: get_fixture in a fresh interpreter (the freeze is once per process); prints the freeze count before and after.
FREEZE_CHILD = """
import gc, json, sys
before = gc.get_freeze_count()
from pytest_tinymodels import get_fixture
triple = get_fixture("tiny_llama", cache_dir=sys.argv[1])
print(json.dumps({"before": before, "after": gc.get_freeze_count(), "model": type(triple.model).__name__}))
"""


def _freeze_counts(cache: Path, env_value: str | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), HF_HUB_OFFLINE="1")
    env.pop("PYTEST_TINYMODELS_GC_FREEZE", None)
    if env_value is not None:
        env["PYTEST_TINYMODELS_GC_FREEZE"] = env_value
    proc = subprocess.run([sys.executable, "-c", FREEZE_CHILD, str(cache)], capture_output=True, text=True, env=env,
                          cwd=str(ROOT), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_first_load_freezes_the_import_objects(shared_cache: Path) -> None:
    counts = _freeze_counts(shared_cache, None)
    assert counts["model"] == "LlamaForCausalLM"
    assert counts["before"] == 0
    # torch + transformers + datasets leave several hundred thousand objects: all of them are frozen
    assert counts["after"] > 100_000


def test_gc_freeze_opt_out(shared_cache: Path) -> None:
    counts = _freeze_counts(shared_cache, "0")
    assert counts["model"] == "LlamaForCausalLM"
    assert counts["after"] == 0


def test_freeze_runs_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from pytest_tinymodels import loader

    calls = []
    monkeypatch.setattr(loader, "_gc_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    monkeypatch.delenv(loader.GC_FREEZE_ENV, raising=False)
    assert loader.freeze_import_garbage() is True
    assert loader.freeze_import_garbage() is False
    assert calls == [1]


# -- the fast loader against from_pretrained --------------------------------------------------------------------
CAUSAL_MANIFEST = """
[fixtures.tiny_causal]
task = "causal-lm"
architectures = "*"
"""
#: a spread of causal LMs: rotary / learned positions, tied and untied heads, fp32-kept parameters
#: (RWKV's _keep_in_fp32_modules), a state-space model, an encoder used as a decoder.  (MoE checkpoints that
#: save_pretrained writes in the original per-expert layout need from_pretrained's key conversion: the fast
#: loader declines them, test_fast_load_every_causal_lm covers them.)
REPRESENTATIVE = ("llama", "gpt2", "qwen2", "gemma2", "phi3", "rwkv", "mamba", "bert")


@pytest.fixture(scope="module")
def causal_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fastload") / "fixtures.toml"
    path.write_text(CAUSAL_MANIFEST)
    return path


def _causal_types() -> list[str]:
    from pytest_tinymodels.build import architectures

    return sorted({info.model_type for info in architectures.expand("causal-lm", "*", [])})


def _assert_same_model(reference, loaded, inputs) -> None:
    """``loaded`` is ``reference`` (a from_pretrained load): class, weights and every buffer bit for bit with their
    dtypes, requires_grad, tied weights sharing one tensor, logits."""
    import torch

    assert type(loaded) is type(reference)
    ref_state, state = reference.state_dict(), loaded.state_dict()
    assert state.keys() == ref_state.keys()
    for key, tensor in ref_state.items():
        assert state[key].dtype == tensor.dtype, key
        assert torch.equal(state[key], tensor), key
    ref_buffers, buffers = dict(reference.named_buffers()), dict(loaded.named_buffers())  # non-persistent too
    assert buffers.keys() == ref_buffers.keys()
    for key, tensor in ref_buffers.items():
        assert buffers[key].dtype == tensor.dtype and torch.equal(buffers[key], tensor), key
    for key, param in reference.named_parameters():
        assert loaded.get_parameter(key).requires_grad == param.requires_grad, key
    tied = dict(reference.all_tied_weights_keys)
    assert dict(loaded.all_tied_weights_keys) == tied
    for target, source in tied.items():
        shared = reference.get_parameter(target) is reference.get_parameter(source)
        assert (loaded.get_parameter(target) is loaded.get_parameter(source)) == shared, (target, source)
    assert loaded.training == reference.training is False
    assert loaded.config.to_dict() == reference.config.to_dict()
    with torch.no_grad():
        torch.manual_seed(0)
        expected = reference(**inputs).logits
        torch.manual_seed(0)
        got = loaded(**inputs).logits
    assert got.dtype == expected.dtype
    assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(expected))


def _check_causal(model_type: str, manifest: Path, cache: Path, dtype: str = "float32", *, require_fast: bool) -> None:
    import torch
    import transformers

    from pytest_tinymodels import get_fixture
    from pytest_tinymodels.build.inputs import model_inputs
    from pytest_tinymodels.errors import BuildError
    from pytest_tinymodels.fastload import fast_load_model

    try:
        triple = get_fixture("tiny_causal", manifest=str(manifest), cache_dir=str(cache), variant=model_type,
                             dtype=dtype)
    except BuildError as exc:
        if require_fast:
            raise
        pytest.skip(f"{model_type} does not build here: {exc}")
    record = triple.recipe["fast_load"]
    assert record["dtype"] == dtype
    class_name = triple.recipe["architecture"]
    reference = getattr(transformers, class_name).from_pretrained(
        str(triple.path), dtype=getattr(torch, dtype), use_safetensors=True, use_kernels=False)
    inputs = model_inputs(reference, None, task="causal-lm")
    if require_fast:
        assert record["model"] is True, record.get("declined")
        assert record["tokenizer"] and record["dataset"] is True, record
    fast = fast_load_model(triple.path, class_name, dtype=dtype)
    if record["model"]:
        assert fast is not None
        _assert_same_model(reference, fast, inputs)
    _assert_same_model(reference, triple.model, inputs)  # what the loader handed out, either path
    if record["tokenizer"]:
        assert type(triple.tokenizer).__name__ == record["tokenizer"]
        assert type(transformers.AutoTokenizer.from_pretrained(str(triple.path))) is type(triple.tokenizer)


@pytest.mark.parametrize("model_type", REPRESENTATIVE)
def test_fast_load_is_from_pretrained(model_type: str, causal_manifest: Path, shared_cache: Path) -> None:
    _check_causal(model_type, causal_manifest, shared_cache, require_fast=True)


@pytest.mark.parametrize(("model_type", "dtype"), [("llama", "bfloat16"), ("rwkv", "float16"),
                                                   ("rwkv", "bfloat16"), ("gemma2", "float16")])
def test_fast_load_half_precision(model_type: str, dtype: str, causal_manifest: Path, shared_cache: Path) -> None:
    """fp16 / bf16 entries: the dtype plan keeps RWKV's time_decay / time_first in fp32 in fp16 (its
    _keep_in_fp32_modules), like from_pretrained."""
    _check_causal(model_type, causal_manifest, shared_cache, dtype, require_fast=True)


@pytest.mark.slow
@pytest.mark.parametrize("model_type", _causal_types())
def test_fast_load_every_causal_lm(model_type: str, causal_manifest: Path, shared_cache: Path) -> None:
    """Every causal-LM class of the installed transformers: what the loader hands out (fast path where the
    build verified it, else from_pretrained) is what from_pretrained loads."""
    _check_causal(model_type, causal_manifest, shared_cache, require_fast=False)


def test_verification_catches_differences(causal_manifest: Path, shared_cache: Path) -> None:
    """The build's check (fastload.model_differences) fails an untied head, a changed non-persistent buffer, a
    wrong dtype and a different forward."""
    import torch

    from pytest_tinymodels import get_fixture
    from pytest_tinymodels.build.inputs import model_inputs
    from pytest_tinymodels.fastload import fast_load_model, model_differences

    triple = get_fixture("tiny_causal", manifest=str(causal_manifest), cache_dir=str(shared_cache), variant="gpt2")
    reference = fast_load_model(triple.path, "GPT2LMHeadModel")
    inputs = model_inputs(reference, None, task="causal-lm")
    assert model_differences(reference, fast_load_model(triple.path, "GPT2LMHeadModel"), inputs) == []

    untied = fast_load_model(triple.path, "GPT2LMHeadModel")
    untied.lm_head.weight = torch.nn.Parameter(untied.lm_head.weight.detach().clone())
    assert "shared (tied) tensors differ" in model_differences(reference, untied, inputs)

    llama = get_fixture("tiny_causal", manifest=str(causal_manifest), cache_dir=str(shared_cache), variant="llama")
    ref_llama = fast_load_model(llama.path, "LlamaForCausalLM")
    buffer = fast_load_model(llama.path, "LlamaForCausalLM")
    buffer.model.rotary_emb.inv_freq[0] += 1e-3
    assert any("rotary_emb.inv_freq" in line for line in model_differences(ref_llama, buffer))

    assert model_differences(ref_llama, fast_load_model(llama.path, "LlamaForCausalLM", dtype="bfloat16"))

    forward = fast_load_model(llama.path, "LlamaForCausalLM")
    forward.config.rms_norm_eps = 0.5  # weights equal, the forward is not (config compared too: check it alone)
    original = forward.config.to_dict
    forward.config.to_dict = lambda: ref_llama.config.to_dict()
    for layer in forward.model.layers:
        layer.input_layernorm.variance_epsilon = 0.5
    found = model_differences(ref_llama, forward, model_inputs(ref_llama, None, task="causal-lm"))
    forward.config.to_dict = original
    assert found, "a different epsilon must show in the attributes or the forward"


def test_loader_falls_back_without_a_record(causal_manifest: Path, shared_cache: Path, monkeypatch) -> None:
    """An entry whose recipe has no fast_load record of this version loads through from_pretrained, without
    hub kernels."""
    import transformers

    from pytest_tinymodels import fastload, get_fixture

    monkeypatch.setattr(fastload, "FAST_LOAD_VERSION", fastload.FAST_LOAD_VERSION + 1000)
    calls = []
    original = transformers.LlamaForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        calls.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.LlamaForCausalLM, "from_pretrained", classmethod(spy))
    monkeypatch.setattr(fastload, "fast_load_model", lambda *a, **k: pytest.fail("fast path taken"))
    triple = get_fixture("tiny_causal", manifest=str(causal_manifest), cache_dir=str(shared_cache), variant="llama")
    assert type(triple.model).__name__ == "LlamaForCausalLM"
    assert calls and calls[-1]["use_kernels"] is False
