"""Audio family rules (:mod:`pytest_tinymodels.build.families.audio`): pure config-dict checks of the shrink rules
and real builds (shrink + processor + model + smoke forward + save) of representative architectures."""

from __future__ import annotations

import math

import pytest

SIZE_LIMIT = 2_097_152


def _shrunk(model_type: str) -> dict:
    from pytest_tinymodels.build import shrink

    return shrink.shrink_dict(shrink.base_config(model_type).to_dict())


# --------------------------------------------------------------------------- config rules (dicts)


def test_per_side_kv_heads_divide_heads() -> None:
    from pytest_tinymodels.build import shrink

    node = {"model_type": "moonshine", "hidden_size": 288, "encoder_num_attention_heads": 8,
            "encoder_num_key_value_heads": 8, "decoder_num_attention_heads": 8, "decoder_num_key_value_heads": 8}
    small = shrink.shrink_dict(node)
    for side in ("encoder_", "decoder_"):
        heads, kv = small[f"{side}num_attention_heads"], small[f"{side}num_key_value_heads"]
        assert heads < 8 and kv == heads  # multi-head attention stays multi-head


def test_speech_encoder_with_mha_keeps_kv_equal_heads() -> None:
    from pytest_tinymodels.build import shrink

    node = {"model_type": "x", "num_mel_bins": 80, "hidden_size": 1024, "num_attention_heads": 8,
            "num_key_value_heads": 8}
    small = shrink.shrink_dict(node)
    assert small["num_key_value_heads"] == small["num_attention_heads"]
    text = {"model_type": "y", "hidden_size": 1024, "num_attention_heads": 8, "num_key_value_heads": 8}
    assert shrink.shrink_dict(text)["num_key_value_heads"] < shrink.shrink_dict(text)["num_attention_heads"]


def test_dac_decoder_keeps_a_channel_per_upsampling_stage() -> None:
    small = _shrunk("dac")
    assert small["decoder_hidden_size"] // 2 ** len(small["upsampling_ratios"]) >= 1


def test_xcodec_semantic_frames_match_acoustic_frames() -> None:
    small = _shrunk("xcodec")
    semantic, acoustic = small["semantic_model_config"], small["acoustic_model_config"]
    assert math.prod(semantic["conv_stride"]) == math.prod(acoustic["downsampling_ratios"])
    assert len(semantic["conv_dim"]) == len(semantic["conv_kernel"]) == semantic["num_feat_extract_layers"]
    assert small["codebook_dim"] == semantic["hidden_size"] + acoustic["hidden_size"]


def test_feature_projection_input_is_the_extractor_width() -> None:
    from pytest_tinymodels.build import shrink

    base = shrink.base_config("wav2vec2-bert").to_dict()
    assert _shrunk("wav2vec2-bert")["feature_projection_input_dim"] == base["feature_projection_input_dim"]


def test_kyutai_embedding_table_layout() -> None:
    small = _shrunk("kyutai_speech_to_text")
    n, codec = small["num_codebooks"], small["codec_config"]
    assert n <= 4 and codec["num_quantizers"] == n
    assert small["codebook_vocab_size"] == codec["codebook_size"] + 1
    assert small["audio_pad_token_id"] == small["vocab_size"] + n * small["codebook_vocab_size"]


def test_fun_asr_nano_adaptor_matches_text_model() -> None:
    small = _shrunk("fun_asr_nano")
    adaptor, text = small["adaptor_config"], small["text_config"]
    assert adaptor["hidden_size"] == text["hidden_size"]
    assert adaptor["intermediate_size"] == text["hidden_size"] // 4
    audio = small["audio_config"]
    assert 0 < audio["num_timestamp_prediction_layers"] < audio["num_hidden_layers"]


def test_audio_towers_use_their_parent_feature_extractor() -> None:
    from pytest_tinymodels.build import processors, rules
    from pytest_tinymodels.build.families import audio

    assert audio.FEATURE_EXTRACTOR_OF.items() <= rules.FEATURE_EXTRACTOR_OF.items()
    extractor = processors.tiny_feature_extractor("qwen2_audio_encoder", None)
    assert type(extractor).__name__ == "WhisperFeatureExtractor"


# --------------------------------------------------------------------------- real builds


@pytest.mark.parametrize("model_type, class_name", [
    ("moonshine", "MoonshineForConditionalGeneration"),  # per-side kv heads
    ("qwen2_audio_encoder", "Qwen2AudioEncoder"),  # parent's extractor: exactly 2 * max_source_positions frames
    ("kyutai_speech_to_text", "KyutaiSpeechToTextModel"),  # text + codebook streams
    ("speecht5", "SpeechT5ForTextToSpeech"),  # spectrogram decoder inputs
    ("mimi_decoder", "MimiDecoderModel"),  # codec latents
])
def test_builds_and_runs(model_type: str, class_name: str, tmp_path) -> None:
    from pytest_tinymodels import coverage
    from pytest_tinymodels.build import architectures

    row = coverage.check_fixture(architectures.resolve(model_type, class_name, None), tmp_path)
    assert row["forward"], row["reason"]
    assert row["size_bytes"] <= SIZE_LIMIT
