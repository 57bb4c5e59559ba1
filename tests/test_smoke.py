"""smoke.py (dummy inputs, smoke forward), processors.py (tiny processors, datasets) and coverage.py."""

from __future__ import annotations

import json

import pytest

from pytest_tinymodels.build.architectures import resolve
from pytest_tinymodels.build.shrink import base_config, config_for_class, shrink_config
from pytest_tinymodels.build.configtools import image_size_of, text_vocab_size
from pytest_tinymodels.build.inputs import SmokeError, dummy_inputs, smoke_forward


def _model(model_type, architecture=None, **special):
    import torch
    import transformers

    info = resolve(model_type, architecture, None)
    cfg = shrink_config(base_config(model_type), vocab_size=300, special_token_ids=special or None)
    cls = getattr(transformers, info.class_name)
    torch.manual_seed(0)
    return info, cls(config_for_class(cfg, cls))


def test_text_inputs_avoid_special_ids_and_stay_in_vocab():
    info, model = _model("llama", pad_token_id=0, bos_token_id=1, eos_token_id=2)
    inputs = dummy_inputs(model, model.config, batch_size=3, seq_len=5)
    assert set(inputs) == {"input_ids", "attention_mask"}
    ids = inputs["input_ids"]
    assert tuple(ids.shape) == (3, 5) and int(ids.max()) < text_vocab_size(model.config) == 300
    assert not ({0, 1, 2} & set(ids.flatten().tolist()))
    again = dummy_inputs(model, model.config, batch_size=3, seq_len=5)
    assert bool((again["input_ids"] == ids).all())  # deterministic


def test_seq2seq_inputs_and_labels():
    info, model = _model("t5")
    inputs = dummy_inputs(model, model.config, task=info.task, labels=True)
    assert {"input_ids", "attention_mask", "decoder_input_ids", "labels"} <= set(inputs)
    out = smoke_forward(model, inputs)
    assert out.loss is not None


@pytest.mark.parametrize("task", ["causal-lm", "sequence-classification", "token-classification", "question-answering"])
def test_task_labels_give_a_loss(task):
    import torch

    info = resolve("bert", None, task)
    import transformers

    cfg = shrink_config(base_config("bert"), vocab_size=300)
    from pytest_tinymodels.build.architectures import task_config_updates

    for k, v in task_config_updates(info, cfg).items():
        setattr(cfg, k, v)
    model = getattr(transformers, info.class_name)(cfg)
    out = smoke_forward(model, dummy_inputs(model, cfg, task=task, labels=True))
    assert torch.isfinite(out.loss)


def test_multiple_choice_shape():
    info, model = _model("bert", "BertForMultipleChoice")
    inputs = dummy_inputs(model, model.config, batch_size=2, seq_len=6)
    assert tuple(inputs["input_ids"].shape) == (2, 2, 6)
    smoke_forward(model, inputs)


def test_image_inputs_follow_the_config():
    info, model = _model("vit")
    inputs = dummy_inputs(model, model.config)
    assert tuple(inputs["pixel_values"].shape) == (2, 3, *image_size_of(model.config)) == (2, 3, 32, 32)
    smoke_forward(model, inputs)


def test_dual_encoder_gets_both_inputs():
    info, model = _model("clip", "CLIPModel")
    inputs = dummy_inputs(model, model.config)
    assert {"input_ids", "pixel_values"} <= set(inputs)
    smoke_forward(model, inputs)


def test_audio_inputs_through_the_feature_extractor():
    from pytest_tinymodels.build.processors import tiny_feature_extractor

    info, model = _model("whisper")
    fe = tiny_feature_extractor("whisper", model.config)
    inputs = dummy_inputs(model, model.config, fe)
    assert tuple(inputs["input_features"].shape) == (2, model.config.num_mel_bins,
                                                     2 * model.config.max_source_positions)
    smoke_forward(model, inputs)
    info, model = _model("wav2vec2")
    assert inputs_ok(model)


def inputs_ok(model):
    inputs = dummy_inputs(model, model.config)
    smoke_forward(model, inputs)
    return inputs["input_values"].ndim == 2


def test_smoke_forward_rejects_non_finite_and_failing_models():
    import torch

    class NaNModel(torch.nn.Module):
        def forward(self, x):
            return {"logits": x * float("nan")}

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("shapes do not match\nsecond line")

    class NoTensor(torch.nn.Module):
        def forward(self, x):
            return {"ids": torch.ones(0, dtype=torch.long), "note": "empty"}

    class Codes(torch.nn.Module):  # a codec encoder: integer codes only, accepted
        def forward(self, x):
            return {"audio_codes": torch.ones(2, dtype=torch.long)}

    with pytest.raises(SmokeError, match="non-finite"):
        smoke_forward(NaNModel(), {"x": torch.ones(2)})
    with pytest.raises(SmokeError, match="Broken failed: RuntimeError: shapes do not match$"):
        smoke_forward(Broken(), {"x": torch.ones(2)})
    with pytest.raises(SmokeError, match="returned no tensor"):
        smoke_forward(NoTensor(), {"x": torch.ones(2)})
    assert smoke_forward(Codes(), {"x": torch.ones(2)})["audio_codes"].dtype == torch.long


def test_unknown_required_input_is_reported():
    import torch

    class Needs(torch.nn.Module):
        main_input_name = "input_ids"
        config = None

        def forward(self, input_ids, mystery_tensor):
            return input_ids

    from transformers import LlamaConfig

    with pytest.raises(SmokeError, match="mystery_tensor"):
        dummy_inputs(Needs(), LlamaConfig(vocab_size=32, hidden_size=8, num_attention_heads=2))


# --------------------------------------------------------------------------- processors


def test_tiny_image_processor_and_round_trip(tmp_path):
    import numpy as np
    from transformers import AutoImageProcessor

    from pytest_tinymodels.build.processors import build_processor

    info = resolve("vit", None, None)
    cfg = shrink_config(base_config("vit"))
    desc = build_processor(info, cfg, tmp_path)
    assert desc["image_size"] == 32 and desc["image_processor"].startswith("ViTImageProcessor")
    cfg.save_pretrained(tmp_path)
    proc = AutoImageProcessor.from_pretrained(tmp_path)
    out = proc(images=[np.zeros((50, 40, 3), dtype=np.uint8)], return_tensors="pt")
    assert tuple(out["pixel_values"].shape) == (1, 3, 32, 32)


def test_feature_extractor_matches_whisper_frames(tmp_path):
    import numpy as np

    from pytest_tinymodels.build.processors import build_processor, tiny_feature_extractor

    cfg = shrink_config(base_config("whisper"))
    fe = tiny_feature_extractor("whisper", cfg)
    feats = fe([np.zeros(4000, dtype=np.float32)], sampling_rate=16000, return_tensors="pt")["input_features"]
    assert tuple(feats.shape) == (1, cfg.num_mel_bins, 2 * cfg.max_source_positions)
    desc = build_processor(resolve("whisper", None, None), cfg, tmp_path)
    assert desc["feature_extractor"] == "WhisperFeatureExtractor" and (tmp_path / "preprocessor_config.json").exists()


def test_no_processor_is_an_error():
    from pytest_tinymodels.build.processors import ProcessorError, tiny_image_processor

    with pytest.raises(ProcessorError, match="llama"):
        tiny_image_processor("llama")


def test_datasets_are_deterministic():
    from pytest_tinymodels.build.datasets import build_media_dataset as build_dataset

    a, b = build_dataset("image", {"rows": 4}, seed=1), build_dataset("image", {"rows": 4}, seed=1)
    c = build_dataset("image", {"rows": 4}, seed=2)
    assert len(a) == 4 and a[0]["image"].size == (32, 32)
    assert a[0]["image"].tobytes() == b[0]["image"].tobytes() != c[0]["image"].tobytes()
    audio = build_dataset("audio", {"rows": 3, "samples": 1600}, seed=0)
    assert len(audio) == 3 and len(audio[0]["audio"]["array"]) == 1600
    assert audio[0]["audio"]["sampling_rate"] == 16000
    assert audio[1]["audio"]["array"] == build_dataset("audio", {"rows": 3, "samples": 1600})[1]["audio"]["array"]
    with pytest.raises(ValueError, match="modality"):
        build_dataset("video", {})


# --------------------------------------------------------------------------- coverage sweep


def test_coverage_sweep_writes_rows_and_survives_timeouts(tmp_path):
    from pytest_tinymodels.coverage import main

    assert main(["--task", "causal-lm", "--include", "gpt2", "--include", "llama", "--out", str(tmp_path), "-q"]) == 0
    report = json.loads((tmp_path / "coverage.json").read_text())
    rows = {r["id"]: r for r in report["results"]}
    assert set(rows) == {"gpt2/GPT2LMHeadModel", "llama/LlamaForCausalLM"}
    assert all(r["built"] and r["forward"] and r["size_bytes"] < 2 * 1024 * 1024 for r in rows.values())
    assert all(r["loss_backward"] is True and r["loss_reason"] is None for r in rows.values())
    md = (tmp_path / "COVERAGE.md").read_text()
    assert "python -m pytest_tinymodels coverage --task causal-lm" in md and "| causal-lm | 2 | 2 | 2 |" in md
    assert "| 2 | 2 | 100.0 |" in md  # with a loss, loss + backward, % of those

    from pytest_tinymodels.coverage import run_coverage

    slow = run_coverage(["causal-lm"], tmp_path / "t", include="gpt2", timeout_per_arch=0.05, progress=False)
    assert [(r["stage"], r["forward"]) for r in slow["results"]] == [("timeout", False)]


def test_assistant_model_gets_target_states():
    info, model = _model("gemma4_unified_assistant")
    inputs = dummy_inputs(model, model.config)
    assert "input_ids" not in inputs and {"inputs_embeds", "shared_kv_states"} <= set(inputs)
    assert set(inputs["shared_kv_states"]) == set(model.config.get_text_config().layer_types)
    smoke_forward(model, inputs)


# --------------------------------------------------------------------------- labels


def test_labels_only_where_the_forward_takes_them():
    import torch

    from pytest_tinymodels.build.inputs import InputsError, LABEL_BUILDERS, model_inputs, takes_argument

    class Base(torch.nn.Module):
        def forward(self, input_ids=None, labels=None):
            return input_ids

    class Passes(Base):  # takes labels through **kwargs to its parent, like Qwen3_5ForSequenceClassification
        def forward(self, input_ids=None, **kwargs):
            return super().forward(input_ids, **kwargs)

    class Swallows(torch.nn.Module):  # takes anything in **kwargs and computes no loss, like draft models
        def forward(self, input_ids=None, **kwargs):
            return input_ids

    assert takes_argument(Passes(), "labels") and not takes_argument(Swallows(), "labels")
    info, model = _model("llama")
    assert {"causal-lm", "seq2seq-lm", "ctc", "question-answering"} <= set(LABEL_BUILDERS)
    with pytest.raises(InputsError, match="no labels for task 'base'"):
        model_inputs(model, task="base", labels=True)
    assert torch.equal(model_inputs(model, task="causal-lm", labels=True)["labels"],
                       model_inputs(model, task="causal-lm")["input_ids"])


def test_ctc_labels_bring_the_mask_the_loss_reads():
    from pytest_tinymodels.build.inputs import model_inputs
    from pytest_tinymodels.build.processors import tiny_feature_extractor

    info, model = _model("wav2vec2", "Wav2Vec2ForCTC")
    fe = tiny_feature_extractor("wav2vec2", model.config)
    inputs = model_inputs(model, fe, task="ctc", labels=True)
    assert inputs["attention_mask"].shape == inputs["input_values"].shape
    model.train()
    out = model(**inputs)
    assert out.loss is not None and bool(out.loss.isfinite())
    out.loss.backward()


def test_one_text_length_rule():
    from pytest_tinymodels.build.inputs import DEFAULT_SEQ_LEN, default_text_length, model_inputs

    info, model = _model("reformer", "ReformerForMaskedLM")
    axial = 1
    for factor in model.config.axial_pos_shape:
        axial *= factor
    assert default_text_length(model, task="masked-lm") == axial != DEFAULT_SEQ_LEN
    model.train()
    model(**model_inputs(model, task="masked-lm", labels=True)).loss.backward()
    info, llama = _model("llama")
    assert default_text_length(llama, task="causal-lm") == DEFAULT_SEQ_LEN
