"""Processor -> forward conformance of every image-text-to-text family that builds (issue 14).

Each family is built exactly as a fixture is built, then used as a user's test would: ``AutoProcessor`` from
the repo, the family's chat template renders a user turn with an image (its placeholder tokens in the text),
``processor(text=..., images=[image])`` expands them, and ``model(**inputs)`` runs (see :mod:`mmcheck`).

Where torchvision is missing (it is here), a processor whose *video* part needs it is rebuilt from the saved
files with the library's base video processor standing in (no video is passed); a family whose *image* part
has no PIL backend is checked for its files only (the repo names its classes, which load where torchvision
is installed).  Families that do not pass yet are strict xfails with the reason: one that starts passing fails
the test, so the table below stays true.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PIL")

from mmcheck import build, check_repo, needs_torchvision  # noqa: E402
from pytest_tinymodels.build import architectures, processors  # noqa: E402

#: the families most test suites use: run in every test session (the others are marked slow).
CORE = frozenset({"llava", "gemma3", "paligemma", "idefics3", "qwen2_vl", "qwen2_5_vl", "blip-2", "mllama"})

#: family -> why processor -> forward does not work yet (strict xfail).
KNOWN_FAILURES: dict[str, str] = {
    "aria": "processor patch count not tied to the tiny vision tower (patch_to_query_dict): KeyError: 'Number of patches 14884 not found in patch_to_query_dict amongst possible values dict_keys([1225...",
    "aya_vision": "ValueError: Image features and image tokens do not match, tokens: 0, features: 52",
    "chameleon": "processor image_seq_length is not the tiny VQ model's token count: ValueError: Image features and image tokens do not match, tokens: 1, features: 4",
    "cosmos3_edge": "ValueError: Multimodal data was passed (via `image_grid_thw` or `video_grid_thw`) but `mm_token_type_ids` i...",
    "cosmos3_omni": "ValueError: Multimodal data was passed (via `image_grid_thw` or `video_grid_thw`) but `mm_token_type_ids` i...",
    "deepseek_ocr2": "RuntimeError: Sizes of tensors must match except in dimension 1. Expected size 56 but got size 64 for tenso...",
    "deepseek_vl_hybrid": "image processor high-resolution size (1024) is not the tiny tower's: ValueError: Input image size (1024*1024) doesn't match model (32*32).",
    "dots3_note": "RuntimeError: The size of tensor a (8) must match the size of tensor b (4) at non-singleton dimension 0",
    "emu3": "ValueError: Image features and image tokens do not match, tokens: 1, features: 271872",
    "evolla": "a protein tokenizer part is not built: AssertionError: LlamaTokenizer holds no tokenizer",
    "florence2": "TypeError: can't multiply sequence by non-int of type 'NoneType'",
    "fuyu": "KeyError: '|SPEAKER|'",
    "gemma4": "the default Gemma 4 config has no vision tower: TypeError: 'NoneType' object is not callable",
    "glmga": "no processor class known for the model type: AssertionError: LlamaTokenizer holds no tokenizer",
    "got_ocr2": "processor image token count is not the tiny tower's: ValueError: Image features and image tokens do not match, tokens: 256, features: 1",
    "granite4_vision": "ValueError: Image feature shape does not line up with the provided patch size. You may be using the `defaul...",
    "granite_docling": "processor image_seq_len / splitting is not the tiny tower's: ValueError: Image features and image tokens do not match: tokens: 1984, features 31",
    "hunyuan_vl": "its processor wants <|image_start|><|image_pad|><|image_end|>, the ChatML template writes Qwen's: ValueError: HunYuanVL image placeholders must be formatted as <|image_start|><|image_pad|><|image_end|> but...",
    "instructblipvideo": "TypeError: InstructBlipVideoForConditionalGeneration.forward() missing 1 required positional argument: 'pix...",
    "internvl": "processor image_seq_length / tiling is not the tiny tower's: ValueError: Image features and image tokens do not match, tokens: 3328, features: 52",
    "kosmos-2": "RuntimeError: shape mismatch: value tensor of shape [4, 64] cannot be broadcast to indexing result of shape...",
    "kosmos-2.5": "RuntimeError: mat1 and mat2 shapes cannot be multiplied (4096x768 and 64x64)",
    "llava_onevision": "TypeError: must be real number, not NoneType",
    "llava_onevision1_5": "RuntimeError: split_with_sizes expects split_sizes to sum exactly to 8 (input tensor's size at dimension 0)...",
    "minicpmv4_6": "its processor calls the torchvision video processor at load (stand-in lacks slice_mode): AttributeError: 'BaseVideoProcessor' object has no attribute 'slice_mode'",
    "minicpmv4_7": "its processor calls the torchvision video processor at load (stand-in lacks slice_mode): AttributeError: 'BaseVideoProcessor' object has no attribute 'slice_mode'",
    "mllama": "IndexError: index out of range in self",
    "nemotron_h_omni": "its audio part has no entry in transformers' feature-extractor mapping and is not saved: KeyError: 'feature_extractor'",
    "ovis2": "its processor expands <image> into tokens the config does not point at: Image features and image tokens do not match, tokens: 0, features: 16",
    "ovis2_5": "ValueError: Size must contain 'height' and 'width' keys, or 'max_height' and 'max_width', or 'shortest_edge...",
    "pi05": "the build's smoke forward fails: AttributeError: 'NoneType' object has no attribute 'get_seq_length'",
    "pix2struct": "KeyError: 'input_ids'",
    "qianfan_ocr": "its template placeholder is not the processor's <image>: ValueError: The total number of <image> tokens in the prompts should be the same as the number of images pa...",
    "vision-encoder-decoder": "no processor class for the generic encoder-decoder: AssertionError: LlamaTokenizer holds no tokenizer",
}

FAMILIES = architectures.expand("image-text-to-text")


def _param(info: architectures.ArchInfo) -> object:
    marks = []
    if info.model_type not in CORE:
        marks.append(pytest.mark.slow)
    if info.model_type in KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(reason=KNOWN_FAILURES[info.model_type], strict=True))
    return pytest.param(info, id=info.model_type, marks=marks)


@pytest.mark.parametrize("info", [_param(info) for info in FAMILIES])
def test_processor_then_forward(info: architectures.ArchInfo, tmp_path: Path) -> None:
    from pytest_tinymodels.errors import BuildError

    try:
        repo = build(info.model_type, info.class_name, tmp_path)
    except BuildError as exc:
        missing = _missing_package(exc)
        if missing:
            pytest.skip(f"{info.model_type} needs {missing} (not installed)")
        raise
    try:
        seen = check_repo(repo)
    except Exception as exc:
        missing = _missing_package(exc)
        if missing and missing != "torchvision":
            pytest.skip(f"{info.model_type}: its processor needs {missing} (not installed)")
        if not needs_torchvision(exc):
            raise
        _check_processor_files(info.model_type, repo)
        pytest.skip(f"{info.model_type}: its image processor needs torchvision (not installed); files checked")
    assert seen["tokens"] > 0


def _missing_package(exc: BaseException) -> str | None:
    """The package an error (or its cause) says is missing (timm, num2words, pytesseract, torchvision), or None."""
    import re

    while exc is not None:
        found = re.search(r"pip install ([A-Za-z0-9_.-]+)|requires the (\w+) library", str(exc), re.IGNORECASE)
        if found:
            return (found.group(1) or found.group(2)).strip("`'\".").lower()
        exc = exc.__cause__
    return None


def _check_processor_files(model_type: str, repo: Path) -> None:
    """The repo holds what the family's AutoProcessor reads: processor_config.json naming the class and each
    part (image / video processor, feature extractor) by its class, the tokenizer and the chat template."""
    name = processors.processor_class_name(model_type)
    assert name is not None
    saved = json.loads((repo / "processor_config.json").read_text())
    assert saved["processor_class"] == name
    type_keys = {"image_processor": "image_processor_type", "video_processor": "video_processor_type",
                 "feature_extractor": "feature_extractor_type"}
    try:  # the class itself (transformers' placeholder where torchvision is missing: then the image part at least)
        parts = processors.processor_class(model_type).get_attributes()
    except ImportError:
        parts = ["image_processor"]
    for part in parts:
        if part in type_keys:
            assert saved[part][type_keys[part]], part
    assert (repo / "tokenizer_config.json").is_file()


@pytest.mark.parametrize(("model_type", "class_name", "placeholder"), [
    ("llava", "LlavaForConditionalGeneration", "<image>"),  # a family without its own chat format: its processor's
    ("qwen2_vl", "Qwen2VLForConditionalGeneration", "<|image_pad|>"),  # a family whose format is its own
])
def test_the_family_placeholder_in_a_hand_written_prompt(model_type: str, class_name: str, placeholder: str,
                                                          tmp_path: Path) -> None:
    """A prompt written as the family's model card writes it (LLaVA: ``USER: <image>\\n... ASSISTANT:``) works with
    the tiny processor and model, and the chat template renders the same placeholder."""
    import torch
    import transformers
    from mmcheck import image, messages, processor_without_torchvision

    repo = build(model_type, class_name, tmp_path)
    try:
        processor = transformers.AutoProcessor.from_pretrained(str(repo))
    except ImportError as exc:  # Qwen2-VL's video part needs torchvision: the saved parts around a stand-in
        if not needs_torchvision(exc):
            raise
        processor = processor_without_torchvision(repo)
    assert processor.image_token == processor.tokenizer.image_token == placeholder
    assert len(processor.tokenizer.encode(placeholder, add_special_tokens=False)) == 1
    rendered = processor.apply_chat_template(messages(), add_generation_prompt=True, tokenize=False)
    assert rendered.count(placeholder) == 1
    inputs = processor(text=[f"USER: {placeholder}\nWhat are these?\nASSISTANT:"], images=[image()],
                       return_tensors="pt")
    model = getattr(transformers, class_name).from_pretrained(str(repo)).eval()
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids(placeholder)
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()
