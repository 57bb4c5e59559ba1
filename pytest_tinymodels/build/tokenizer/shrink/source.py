"""Reading a tokenizer source: a directory of Hugging Face tokenizer files or a bare SentencePiece ``.model``.

:class:`Source` holds what the files say (``tokenizer.json``, ``tokenizer_config.json``, the special-token
maps, ``config.json``, the ``.model`` path, the side vocab files, the chat template text). Also here: the
JSON and SentencePiece ``ModelProto`` readers every recipe uses, the ``tokenizer_config.json`` a bare
``.model`` implies, and the one conversion of a source without ``tokenizer.json`` by transformers.

Only the standard library at module level; ``sentencepiece``/``protobuf`` and ``transformers`` inside functions.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
ADDED_TOKENS_JSON = "added_tokens.json"
MODEL_CONFIG = "config.json"
#: Extra files copied verbatim from the source directory when present.
COPIED_FILES = ("chat_template.jinja", "chat_template.json")
#: File name of the SentencePiece model written when the source was a bare ``.model`` file.
DEFAULT_SPM_NAME = "tokenizer.model"

#: Named special-token attributes of transformers tokenizers.
SPECIAL_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# SentencePiece piece types (sentencepiece_model.proto).
SPM_NORMAL, SPM_UNKNOWN, SPM_CONTROL, SPM_USER_DEFINED, SPM_UNUSED, SPM_BYTE = 1, 2, 3, 4, 5, 6
SPM_UNIGRAM, SPM_BPE = 1, 2


# ----------------------------------------------------------------------------------- file readers


def read_json(path: Path) -> Any:
    """The JSON document in ``path`` (UTF-8)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as UTF-8 JSON (non-ASCII kept as is) with a final newline."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    path.write_text(text + "\n", encoding="utf-8")


def token_content(value: Any) -> str | None:
    """Text of a special-token entry (a string or an AddedToken dict)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def is_token_id_key(key: str) -> bool:
    """A model-config key holding token ids (``bos_token_id``, ``image_token_index`` ...)."""
    return key.endswith("_token_id") or key.endswith("_token_ids") or key.endswith("_token_index")


def spm_pb2() -> Any:
    """The SentencePiece ``ModelProto`` module: sentencepiece's own, else the one transformers ships."""
    try:
        from sentencepiece import sentencepiece_model_pb2

        return sentencepiece_model_pb2
    except ImportError:
        pass
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        raise ImportError(
            "reading a SentencePiece .model file needs `sentencepiece` or `protobuf`: pip install sentencepiece"
        ) from None
    try:
        from transformers.utils import sentencepiece_model_pb2_new as pb2
    except ImportError:  # old protobuf
        from transformers.utils import sentencepiece_model_pb2 as pb2
    return pb2


def spm_proto(data: bytes | None = None) -> Any:
    """A new SentencePiece ``ModelProto``: empty, or parsed from serialized ``data``."""
    proto = spm_pb2().ModelProto()
    if data is not None:
        proto.ParseFromString(data)
    return proto


def load_spm(path: Path) -> Any:
    """The ``ModelProto`` of the SentencePiece model file ``path``; ValueError when it holds no pieces."""
    proto = spm_proto(path.read_bytes())
    if not len(proto.pieces):
        raise ValueError(f"{path} is not a SentencePiece model (no pieces)")
    return proto


# ----------------------------------------------------------------------------------------- source


@dataclass
class Source:
    """The tokenizer files of a source directory (or a bare ``.model`` file)."""

    path: Path
    directory: Path | None
    tokenizer_json: dict | None = None
    spm_path: Path | None = None
    tokenizer_config: dict | None = None
    special_tokens_map: dict | None = None
    added_tokens_json: dict | None = None
    config: dict | None = None
    vocab_txt: Path | None = None
    vocab_json: Path | None = None
    merges_txt: Path | None = None
    chat_template: str = ""

    @classmethod
    def load(cls, src: str | os.PathLike) -> "Source":
        """Read the source at ``src``; ValueError / FileNotFoundError when it holds no tokenizer."""
        path = Path(src)
        if path.is_file():
            if path.name == TOKENIZER_JSON:
                return cls.load(path.parent)
            try:
                load_spm(path)
            except ImportError:
                raise
            except Exception:
                raise ValueError(
                    f"source {path} is a file but neither a SentencePiece model nor tokenizer.json"
                ) from None
            return cls(path=path, directory=None, spm_path=path)
        if not path.is_dir():
            raise FileNotFoundError(f"tokenizer source {path} does not exist")
        s = cls(path=path, directory=path)
        if (path / TOKENIZER_JSON).is_file():
            s.tokenizer_json = read_json(path / TOKENIZER_JSON)
        for name, attr in (
            (TOKENIZER_CONFIG, "tokenizer_config"),
            (SPECIAL_TOKENS_MAP, "special_tokens_map"),
            (ADDED_TOKENS_JSON, "added_tokens_json"),
            (MODEL_CONFIG, "config"),
        ):
            if (path / name).is_file():
                setattr(s, attr, read_json(path / name))
        models = sorted(p for p in path.glob("*.model") if p.is_file())
        if models:
            preferred = [p for p in models if p.name == DEFAULT_SPM_NAME]
            s.spm_path = (preferred or models)[0]
            vocab_file = (s.tokenizer_config or {}).get("vocab_file")
            if isinstance(vocab_file, str) and (path / vocab_file).is_file() and vocab_file.endswith(".model"):
                s.spm_path = path / vocab_file
        for name, attr in (("vocab.txt", "vocab_txt"), ("vocab.json", "vocab_json"), ("merges.txt", "merges_txt")):
            if (path / name).is_file():
                setattr(s, attr, path / name)
        texts = []
        template = (s.tokenizer_config or {}).get("chat_template")
        if isinstance(template, str):
            texts.append(template)
        elif isinstance(template, list):
            texts.extend(str(t.get("template", "")) for t in template if isinstance(t, dict))
        for name in COPIED_FILES:
            if (path / name).is_file():
                texts.append((path / name).read_text(encoding="utf-8"))
        s.chat_template = "\n".join(texts)
        if s.tokenizer_json is None and s.spm_path is None and s.vocab_txt is None and s.vocab_json is None:
            raise ValueError(
                f"{path} has no tokenizer files (tokenizer.json, *.model, vocab.txt or vocab.json/merges.txt)"
            )
        return s

    def named_special_tokens(self) -> dict[str, str]:
        """role -> token text, from tokenizer_config.json and special_tokens_map.json."""
        out: dict[str, str] = {}
        for source in (self.special_tokens_map or {}, self.tokenizer_config or {}):
            for role in SPECIAL_ROLES:
                text = token_content(source.get(role))
                if text is not None:
                    out.setdefault(role, text)
        return out

    def config_token_ids(self) -> set[int]:
        """Every token id named by ``config.json`` (``*_token_id(s)``, ``*_token_index``, nested configs too)."""
        ids: set[int] = set()

        def visit(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if is_token_id_key(key):
                        for v in value if isinstance(value, list) else [value]:
                            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                                ids.add(v)
                    elif isinstance(value, dict):
                        visit(value)

        visit(self.config or {})
        return ids


# ------------------------------------------------------------- what a bare SentencePiece model implies


def needs_default_config(src: Source) -> bool:
    """A SentencePiece source that names no tokenizer class (no tokenizer_config, no model_type)."""
    return (src.spm_path is not None and src.tokenizer_config is None
            and not (src.config or {}).get("model_type"))


def default_spm_config(proto: Any) -> dict:
    """tokenizer_config.json for a bare SentencePiece model.

    Llama/Mistral-style models (BPE, byte fallback, no normalization) get ``LlamaTokenizer`` with a
    BOS token added; any other model the generic ``TokenizersBackend``, which follows the model's
    own normalizer spec.
    """
    ts, ns = proto.trainer_spec, proto.normalizer_spec
    llama_like = ts.model_type == SPM_BPE and ts.byte_fallback and ns.name in ("identity", "")
    cfg: dict[str, Any] = {"tokenizer_class": "LlamaTokenizer" if llama_like else "TokenizersBackend"}
    pieces = {p.piece for p in proto.pieces}
    for role in ("unk", "bos", "eos", "pad"):
        piece = getattr(ts, f"{role}_piece")
        if getattr(ts, f"{role}_id") >= 0 and piece in pieces:
            cfg[f"{role}_token"] = piece
    if llama_like:
        cfg.update(add_bos_token="bos_token" in cfg, add_eos_token=False, legacy=False)
    cfg["clean_up_tokenization_spaces"] = False
    return cfg


def convert_to_tokenizer_json(src: Source) -> tuple[dict, dict | None]:
    """A tokenizer.json (and tokenizer_config) for a source without one, converted by transformers."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "src"
        stage.mkdir()
        cfg = src.tokenizer_config
        if src.directory is not None:
            for p in src.directory.iterdir():
                if p.is_file() and (p.suffix in (".json", ".txt", ".model", ".jinja") or p == src.spm_path):
                    shutil.copyfile(p, stage / p.name)
        else:
            shutil.copyfile(src.spm_path, stage / DEFAULT_SPM_NAME)
        if needs_default_config(src):
            cfg = default_spm_config(load_spm(src.spm_path))
            write_json(stage / TOKENIZER_CONFIG, cfg)
        tok = AutoTokenizer.from_pretrained(str(stage))
        out = Path(tmp) / "out"
        tok.save_pretrained(str(out))
        tj = read_json(out / TOKENIZER_JSON)
        if src.tokenizer_config is None:  # our defaults plus the token tables transformers derived
            saved = read_json(out / TOKENIZER_CONFIG)
            cfg = dict(cfg or {})
            for key in ("added_tokens_decoder", "extra_special_tokens", "additional_special_tokens"):
                if key in saved:
                    cfg[key] = saved[key]
    return tj, cfg
