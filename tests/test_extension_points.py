"""The generic extension points the family modules use, and what happens around them:
processors whose class needs a missing library, model-type values, encode-only models,
architectures the installed transformers does not export, text tasks on multimodal model types."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest


class _NeedsTorchvision:
    """Stands in for a transformers image processor whose backend is not installed."""

    def __init__(self, **kwargs):
        raise ImportError("\nPPLCNetImageProcessor requires the Torchvision library but it was not found in your "
                          "environment.")


def test_processor_needing_a_missing_library_is_saved_as_its_config(tmp_path: Path, monkeypatch) -> None:
    import transformers

    from pytest_tinymodels.build import processors

    monkeypatch.setattr(transformers, "PPLCNetImageProcessor", _NeedsTorchvision, raising=False)
    proc = processors.tiny_image_processor("pp_lcnet", image_size=24)
    assert isinstance(proc, processors.SavedProcessorConfig)
    assert (proc.class_name, proc.missing) == ("PPLCNetImageProcessor", "torchvision")
    proc.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved == {"image_processor_type": "PPLCNetImageProcessor", "size": {"height": 24, "width": 24}}


def test_missing_library_is_read_from_the_import_error_only() -> None:
    from pytest_tinymodels.build.processors import missing_library

    assert missing_library(ImportError("X requires the torchaudio library but it was not found")) == "torchaudio"
    assert missing_library(ImportError("No module named 'foo'")) is None
    assert missing_library(ValueError("requires the timm library")) is None  # only ImportErrors


def test_loader_warns_and_gives_no_processor_when_its_library_is_missing(tmp_path: Path) -> None:
    from pytest_tinymodels.loader import load_processor

    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "NoSuchImageProcessor"}))
    with pytest.warns(UserWarning, match="needs torchvision, which is not installed.*pip install torchvision"):
        assert load_processor(tmp_path, "image", needs=["torchvision"]) is None
    with pytest.raises(RuntimeError, match="no processor could be loaded"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_processor(tmp_path, "image")  # nothing recorded as missing: a real error


def test_image_model_types_without_a_processor_use_vits_and_text_ones_get_none() -> None:
    from transformers import AutoConfig

    from pytest_tinymodels.build import processors

    # vitdet has no image processor of its own: a generic resize + normalize at the tiny size
    proc = processors.tiny_image_processor("vitdet", AutoConfig.for_model("vitdet"), image_size=16)
    assert type(proc).__name__.startswith("ViTImageProcessor") and proc.size == {"height": 16, "width": 16}
    with pytest.raises(processors.ProcessorError, match="llama"):
        processors.tiny_image_processor("llama")


def test_model_type_values_merge_and_refuse_conflicts(monkeypatch) -> None:
    from pytest_tinymodels.build import rules, shrink

    rules.load_families()
    monkeypatch.setattr(rules, "MODEL_TYPE_CONFIG", {})
    rules.model_type_values("toy", {"a": 1, "sub": {"b": 2}})
    rules.model_type_values("toy", {"sub": {"c": 3}, "a": 1})  # same value again: fine
    assert rules.MODEL_TYPE_CONFIG == {"toy": {"a": 1, "sub": {"b": 2, "c": 3}}}
    with pytest.raises(ValueError, match=r"MODEL_TYPE_CONFIG\['toy'\]: sub.b is set to 2 and 5"):
        rules.model_type_values("toy", {"sub": {"b": 5}})
    small = shrink.shrink_dict({"model_type": "wrapper", "hidden_size": 512,
                                "inner": {"model_type": "toy", "hidden_size": 512, "num_hidden_layers": 8}})
    assert small["inner"]["a"] == 1 and small["inner"]["sub"] == {"b": 2, "c": 3} and "a" not in small


def test_encode_only_models_are_smoke_checked_through_encode() -> None:
    import torch

    from pytest_tinymodels.build.inputs import dummy_inputs, entry_point, smoke_forward

    class EncodeOnly(torch.nn.Module):  # like GlmImageVQVAE: no forward, an encode
        main_input_name = "hidden_states"

        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"latent_channels": 3})()
            self.proj = torch.nn.Conv2d(3, 2, 1)

        def encode(self, hidden_states):
            return self.proj(hidden_states)

    model = EncodeOnly()
    assert entry_point(model) == model.encode
    inputs = dummy_inputs(model, model.config)  # the families' fixup lays out the latents
    assert tuple(inputs["hidden_states"].shape) == (2, 3, 8, 8)
    assert smoke_forward(model, inputs).shape == (2, 2, 8, 8)


def test_only_exported_classes_are_listed() -> None:
    import transformers

    from pytest_tinymodels.build import architectures

    exported = set(dir(transformers))
    listed = [i.class_name for task in ("base", "causal-lm", "speech-seq2seq") for i in architectures.expand(task)]
    assert listed and not [c for c in listed if c not in exported]


def test_text_task_on_a_multimodal_model_type_gets_its_tokenizer(tmp_path: Path, monkeypatch) -> None:
    from pytest_tinymodels import get_fixture

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.tiny_gemma3_lm]\nmodel_type = "gemma3"\ntask = "causal-lm"\n')
    triple = get_fixture("tiny_gemma3_lm", manifest=str(manifest), cache_dir=str(tmp_path / "cache"))
    assert triple.recipe["modality"] == "multimodal"
    batch = triple.tokenizer(["a tiny test"], return_tensors="pt")  # a tokenizer, not an image processor
    out = triple.model(**batch, labels=batch["input_ids"])
    assert out.loss.isfinite()
