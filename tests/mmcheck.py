"""Processor -> forward conformance of a built multimodal repo, as a user's test would run it.

``check_repo(repo)``: load the repo's ``AutoProcessor`` and model class, render a chat with an image through
``processor.apply_chat_template`` (the family's template puts the image placeholder in the text), run
``processor(text=..., images=[image])`` and ``model(**inputs)``; raises on the first problem.

Run as a script to sweep every image-text-to-text architecture (each built as a fixture is built)::

    python tests/mmcheck.py [model_type ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

QUESTION = "What is in the picture?"
#: processors without a chat template that put the image placeholders into the text themselves.
PLACES_THE_IMAGE_ITSELF = frozenset({"Florence2Processor"})


def image(size: tuple[int, int] = (48, 40)) -> Any:
    """A deterministic RGB image of ``size`` (width, height): not square, so processors resize it."""
    from PIL import Image

    width, height = size
    pixels = bytes((x * 7 + y * 13 + c * 50) % 256 for y in range(height) for x in range(width) for c in range(3))
    return Image.frombytes("RGB", (width, height), pixels)


def messages() -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]


def check_repo(repo: Path) -> dict[str, Any]:
    """processor(chat text with an image, images) -> model(**inputs) on a built repo; returns what it saw."""
    import json

    import torch
    import transformers
    from transformers import AutoProcessor

    config = json.loads((Path(repo) / "config.json").read_text())
    try:
        processor, stand_in = AutoProcessor.from_pretrained(str(repo)), False
    except Exception as exc:
        if not needs_torchvision(exc):
            raise
        processor, stand_in = processor_without_torchvision(Path(repo)), True
    tokenizer = getattr(processor, "tokenizer", None)
    assert tokenizer is not None, f"{type(processor).__name__} holds no tokenizer"
    if processor.chat_template:  # the family's template writes the image placeholder
        text = processor.apply_chat_template(messages(), add_generation_prompt=True, tokenize=False)
    else:  # no template: the processor's placeholder before the question, as its model card writes it
        token = getattr(processor, "image_token", None)
        inserts = type(processor).__name__ in PLACES_THE_IMAGE_ITSELF or not isinstance(token, str)
        text = QUESTION if inserts else token + QUESTION
    inputs = processor(text=[text], images=[image()], return_tensors="pt")
    model_cls = getattr(transformers, config["architectures"][0])
    model = model_cls.from_pretrained(str(repo)).eval()
    ids = inputs["input_ids"]
    assert int(ids.max()) < model.get_input_embeddings().num_embeddings, "input ids beyond the embedding table"
    if getattr(model.config, "is_encoder_decoder", False) and "decoder_input_ids" not in inputs:
        start = getattr(model.config, "decoder_start_token_id", None) or tokenizer.pad_token_id or 0
        inputs["decoder_input_ids"] = torch.full((ids.shape[0], 1), int(start), dtype=torch.long)
    with torch.no_grad():
        output = model(**inputs)
    logits = getattr(output, "logits", None)
    assert logits is not None and torch.isfinite(logits).all(), "no finite logits"
    return {"processor": type(processor).__name__, "tokens": int(ids.shape[-1]), "text": text,
            "chat_template": bool(processor.chat_template), "video_stand_in": stand_in}


def processor_without_torchvision(repo: Path) -> Any:
    """The repo's processor built from its saved files where only its video part needs torchvision (missing
    here): the PIL image processor, the tokenizer, the saved arguments and chat template, and the library's
    base video processor standing in for the torchvision one (never called: no video is passed).  Raises
    when another part needs torchvision (then nothing here can run the family's processor)."""
    import json
    from unittest import mock

    import transformers
    from transformers import AutoTokenizer
    from transformers.processing_utils import ProcessorMixin
    from transformers.video_processing_utils import BaseVideoProcessor

    data = json.loads((repo / "processor_config.json").read_text())
    cls = getattr(transformers, data["processor_class"])
    names = cls.get_attributes()
    parts: dict[str, Any] = {}
    for name in names:
        saved = data.get(name, {})
        if name == "tokenizer":
            parts[name] = AutoTokenizer.from_pretrained(str(repo))
        elif name == "video_processor":
            parts[name] = BaseVideoProcessor()
        elif name == "image_processor":
            kind = saved["image_processor_type"]
            image_cls = getattr(transformers, kind + "Pil", None) or getattr(transformers, kind)
            parts[name] = image_cls(**{k: v for k, v in saved.items() if k != "image_processor_type"})
        elif name == "feature_extractor":
            parts[name] = getattr(transformers, saved["feature_extractor_type"])(
                **{k: v for k, v in saved.items() if k != "feature_extractor_type"})
        else:
            parts[name] = AutoTokenizer.from_pretrained(str(repo / name))
    kwargs = {k: v for k, v in data.items() if k not in names and k != "processor_class"}
    template = repo / "chat_template.jinja"
    with mock.patch.object(ProcessorMixin, "check_argument_for_proper_class", lambda self, name, arg: type(arg)):
        return cls(**parts, **kwargs, chat_template=template.read_text() if template.is_file() else None)


#: how transformers says that loading needs torchvision (every video processor, many image processors)
TORCHVISION = ("torchvision",)


def needs_torchvision(exc: BaseException) -> bool:
    """Whether loading failed only because torchvision is missing (not installable here; the repo names the
    torchvision class, which loads where it is installed)."""
    import importlib.util

    return importlib.util.find_spec("torchvision") is None and "torchvision" in str(exc).lower()


def build(model_type: str, class_name: str, workdir: Path) -> Path:
    """Build one architecture exactly as a fixture is built; return its repo directory."""
    from pytest_tinymodels.build import architectures, build_entry
    from pytest_tinymodels.manifest import FixtureSpec

    info = architectures.resolve(model_type, class_name, None)
    spec = FixtureSpec(name=f"mm_{model_type}".replace("-", "_").replace(".", "_"), manifest=Path("<mmcheck>"),
                       model_type=model_type, architecture=class_name, task=info.task)
    dest = workdir / spec.name
    build_entry(spec, dest, arch=info)
    return dest / "repo"


def main(argv: list[str]) -> int:
    from pytest_tinymodels.build import architectures

    wanted = set(argv)
    rows = []
    for info in architectures.expand("image-text-to-text"):
        if wanted and info.model_type not in wanted:
            continue
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                repo = build(info.model_type, info.class_name, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - a row per family
                rows.append((info.model_type, "build", f"{type(exc).__name__}: {str(exc)[:200]}"))
                print(f"{info.model_type:28} BUILD  {str(exc)[:200]}", flush=True)
                continue
            try:
                seen = check_repo(repo)
                status = "ok*" if seen["video_stand_in"] else "ok"
                rows.append((info.model_type, status, seen["processor"]))
                print(f"{info.model_type:28} {status:6} {seen['processor']} {seen['tokens']} tokens "
                      f"{time.perf_counter() - start:.1f}s", flush=True)
            except Exception as exc:  # noqa: BLE001
                line = next((x for x in str(exc).splitlines() if x.strip()), "")[:220]
                status = "torchvision" if needs_torchvision(exc) else "fail"
                rows.append((info.model_type, status, f"{type(exc).__name__}: {line}"))
                print(f"{info.model_type:28} {status.upper():6} {type(exc).__name__}: {line}", flush=True)
                if "-v" in sys.argv:
                    traceback.print_exc()
    ok = sum(1 for _, status, _ in rows if status.startswith("ok"))
    starred = sum(1 for _, status, _ in rows if status == "ok*")
    built = sum(1 for _, status, _ in rows if status != "build")
    tv = sum(1 for _, status, _ in rows if status == "torchvision")
    print(f"processor -> forward: {ok}/{built} built families ({starred} of them with a stand-in for a torchvision "
          f"video part), {tv} need torchvision for another part, {built - ok - tv} fail ({len(rows)} architectures)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main([a for a in sys.argv[1:] if not a.startswith("-")]))
