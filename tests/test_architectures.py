"""architectures.py: task tables, resolve() and expand()."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_tinymodels.build.architectures import (
    TASK_ORDER,
    TASKS,
    ArchInfo,
    ArchitectureError,
    expand,
    modality_of,
    resolve,
    task_config_updates,
)


def test_every_task_maps_to_an_existing_table():
    from transformers.models.auto import modeling_auto

    for task, tables in TASKS.items():
        for table in tables:
            assert hasattr(modeling_auto, table), (task, table)
        assert expand(task), f"task {task!r} has no architecture in the installed transformers"
    assert set(TASK_ORDER) <= set(TASKS)


def test_required_tasks_present():
    for task in ("causal-lm", "masked-lm", "seq2seq-lm", "sequence-classification", "token-classification",
                 "question-answering", "image-classification", "speech-seq2seq", "ctc", "base"):
        assert task in TASKS


@pytest.mark.parametrize(
    ("model_type", "class_name", "task"),
    [
        ("llama", "LlamaForCausalLM", "causal-lm"),
        ("gpt2", "GPT2LMHeadModel", "causal-lm"),
        ("bert", "BertForMaskedLM", "masked-lm"),  # masked-lm before causal-lm for encoders
        ("t5", "T5ForConditionalGeneration", "seq2seq-lm"),
        ("whisper", "WhisperForConditionalGeneration", "speech-seq2seq"),
        ("vit", "ViTForImageClassification", "image-classification"),
        ("wav2vec2", "Wav2Vec2ForCTC", "ctc"),
    ],
)
def test_resolve_model_type_only_picks_the_sensible_default(model_type, class_name, task):
    info = resolve(model_type, None, None)
    assert (info.model_type, info.class_name, info.task) == (model_type, class_name, task)


def test_resolve_with_task_and_base():
    assert resolve("bert", None, "sequence-classification").class_name == "BertForSequenceClassification"
    assert resolve("llama", None, "base").class_name == "LlamaModel"


def test_resolve_architecture_only_infers_model_type():
    info = resolve(None, "MistralForCausalLM", None)
    assert info.model_type == "mistral" and info.task == "causal-lm"
    assert info.config_class_name == "MistralConfig"
    assert info.id == "mistral/MistralForCausalLM"


def test_resolve_both_must_match():
    with pytest.raises(ArchitectureError) as err:
        resolve("llama", "GPT2LMHeadModel", None)
    assert err.value.field == "architecture"
    assert "gpt2" in str(err.value) and "llama" in str(err.value)


def test_resolve_architecture_not_for_task():
    with pytest.raises(ArchitectureError) as err:
        resolve(None, "LlamaForCausalLM", "masked-lm")
    assert err.value.field == "task"
    assert "causal-lm" in str(err.value)


@pytest.mark.parametrize(
    ("args", "field", "suggestion"),
    [
        (("lama", None, None), "model_type", "llama"),
        ((None, "LlamaForCausalLMM", None), "architecture", "LlamaForCausalLM"),
        (("llama", None, "causal_lm"), "task", "causal-lm"),
    ],
)
def test_unknown_names_list_close_matches(args, field, suggestion):
    with pytest.raises(ArchitectureError) as err:
        resolve(*args)
    assert err.value.field == field
    assert suggestion in str(err.value)
    assert "Did you mean" in str(err.value)


def test_model_type_without_task_class():
    with pytest.raises(ArchitectureError) as err:
        resolve("vit", None, "causal-lm")
    assert err.value.field == "task" and "image-classification" in str(err.value)


def test_expand_sorted_and_complete():
    archs = expand("causal-lm")
    keys = [(a.model_type, a.class_name) for a in archs]
    assert keys == sorted(keys)
    assert len(archs) > 150
    assert all(isinstance(a, ArchInfo) and a.task == "causal-lm" for a in archs)
    assert ("llama", "LlamaForCausalLM") in keys


def test_expand_include_exclude_and_globs():
    assert [a.id for a in expand("causal-lm", "llama")] == ["llama/LlamaForCausalLM"]
    qwen = expand("causal-lm", "qwen*")
    assert qwen and all(a.model_type.startswith("qwen") for a in qwen)
    by_class = expand("causal-lm", ["*LMHeadModel"])
    assert by_class and all(a.class_name.endswith("LMHeadModel") for a in by_class)
    without = expand("causal-lm", "qwen*", exclude=["qwen2*", "Qwen3ForCausalLM"])
    assert all(not a.model_type.startswith("qwen2") and a.class_name != "Qwen3ForCausalLM" for a in without)
    assert len(without) < len(qwen)
    assert expand("causal-lm", "no-such-model-*") == []


def test_expand_unknown_task():
    with pytest.raises(ArchitectureError) as err:
        expand("causal-llm")
    assert err.value.field == "task" and "causal-lm" in str(err.value)


def test_expand_identical_in_another_process():
    code = ("import json; from pytest_tinymodels.build.architectures import expand;"
            "print(json.dumps([a.id for a in expand('sequence-classification', ['b*', 'l*'])]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"})
    here = [a.id for a in expand("sequence-classification", ["b*", "l*"])]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here


def test_task_table_is_remembered_in_the_cache(tmp_path, monkeypatch):
    """A parametrized fixture's collection reads the task's architectures (with modalities) from a memo under
    the cache root: the second process imports no processor auto-mapping, and the answer is the same."""
    from pytest_tinymodels import cache
    from pytest_tinymodels.build import architectures, task_architectures

    monkeypatch.setattr(cache, "MEMO_SETTLE_NS", 0)  # the test's fresh checkout has just-written files
    fresh = architectures.task_architectures("causal-lm")
    assert task_architectures("causal-lm", memo_dir=tmp_path) == fresh  # computes and writes the memo
    assert list((tmp_path / "memo").glob("architectures-*.json"))

    def recompute(task):
        raise AssertionError("the memo was not used")

    monkeypatch.setattr(architectures, "task_architectures", recompute)
    remembered = task_architectures("causal-lm", memo_dir=tmp_path)
    assert remembered == fresh and all(isinstance(a, ArchInfo) for a in remembered)
    assert expand("causal-lm", "qwen*", table=remembered) == [a for a in fresh if a.model_type.startswith("qwen")]


@pytest.mark.parametrize(
    ("model_type", "task", "modality"),
    [("llama", "causal-lm", "text"), ("vit", "image-classification", "image"),
     ("whisper", "speech-seq2seq", "audio"), ("wav2vec2", "ctc", "audio"),
     ("llava", "image-text-to-text", "multimodal"), ("clip", "base", "multimodal"), ("bert", "masked-lm", "text")],
)
def test_modality(model_type, task, modality):
    assert modality_of(model_type, task) == modality


def test_task_config_updates():
    from transformers import BertConfig, LlamaConfig

    assert task_config_updates(resolve("bert", "BertLMHeadModel", None), BertConfig()) == {"is_decoder": True}
    assert task_config_updates(resolve("llama", None, "sequence-classification"), LlamaConfig()) == {"num_labels": 2}


def test_text_encoding_uses_encoder_only_configs():
    from transformers import T5Config

    info = resolve("t5gemma", "T5GemmaEncoderModel", None)
    assert info.task == "text-encoding"
    assert task_config_updates(info, T5Config()) == {"is_encoder_decoder": False}
