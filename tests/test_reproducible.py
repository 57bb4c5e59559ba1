"""Reproducible builds (issue 12): the same spec and library versions give byte-identical entries.

Each group of fixtures is built several times through the public CLI (``python -m pytest_tinymodels
build``), every build in a fresh process with an empty cache of its own.  The builds vary what must
not matter: the Python hash seed, the tokenizers/rayon thread settings (as on a machine with another
core count), the order of the builds inside the process (as ``-n N`` workers and ``--tiny-rebuild``
see it), and one more build is made with ``--rebuild`` over a cache that already holds the entries.
Then the sha256 of every file of each entry is compared: ``recipe.json`` without its timing keys,
``COMPLETE.json`` without the stat signature of the files (inode, mtime, its creation time) and
without its size and sha256 of ``recipe.json`` (which cover the timings).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

from realfiles import botchan_files, minilm_dir, mistral_sp_model

#: recipe.json keys that measure the build rather than describe the entry (no time stamp, no absolute path).
TIMING_KEYS = ("timings", "build_seconds")
#: COMPLETE.json: per-file stat signature and the marker's own creation time (machine state, not content);
#: its size and sha256 of recipe.json cover the timing keys (recipe.json is compared without them).
MARKER_STAT_FIELDS = ("ino", "mtime_ns")
MARKER_TIME_FIELDS = ("created",)
RECIPE = "recipe.json"
#: One fresh process and empty cache per build: env vars that must not change an entry, and whether the
#: fixtures are built in reverse order (what ran before in a process must not matter either).
BUILDS = (
    ({"PYTHONHASHSEED": "1", "RAYON_NUM_THREADS": "1"}, False),
    ({"PYTHONHASHSEED": "2", "RAYON_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}, True),
    ({"PYTHONHASHSEED": "3", "TOKENIZERS_PARALLELISM": "true"}, False),
)
#: The extra build: ``--rebuild`` over the first build's cache, in reverse order.
REBUILD = ({"PYTHONHASHSEED": "4", "RAYON_NUM_THREADS": "3"}, True)
BUILD_TIMEOUT = 600


class Build(NamedTuple):
    """One build process: fixture label -> entry directory, and the file digests of each entry."""

    entries: dict[str, Path]
    digests: dict[str, dict[str, str]]


# ------------------------------------------------------------------------------------------- helpers


def entry_digests(entry: Path) -> dict[str, str]:
    """sha256 of every file of ``entry`` (by relative path), with the build's timings and stat data left out."""
    out = {}
    for path in sorted(p for p in entry.rglob("*") if p.is_file()):
        rel = path.relative_to(entry).as_posix()
        data = path.read_bytes()
        if rel == RECIPE:
            recipe = json.loads(data)
            for key in TIMING_KEYS:
                recipe.pop(key, None)
            data = json.dumps(recipe, sort_keys=True).encode()
        elif rel == "COMPLETE.json":
            marker = json.loads(data)
            for key in MARKER_TIME_FIELDS:
                marker.pop(key, None)
            for name, info in marker.get("files", {}).items():
                for key in MARKER_STAT_FIELDS + (("size", "sha256") if name == RECIPE else ()):
                    info.pop(key, None)
            data = json.dumps(marker, sort_keys=True).encode()
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def run_build(manifest: Path, names: list[str], cache: Path, env: dict[str, str], *, rebuild: bool = False) -> Build:
    """``python -m pytest_tinymodels build`` in a fresh process; the entries it printed, with their digests."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONHASHSEED", "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM", "PYTEST_TINYMODELS_CACHE")}
    full_env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    full_env.update(env)
    cmd = [sys.executable, "-m", "pytest_tinymodels", "build", "--manifest", str(manifest), "--cache-dir", str(cache),
           *(["--rebuild"] if rebuild else []), *names]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    entries = {}
    for line in proc.stdout.splitlines():  # "<label>  built in 0.31s  497.4 KB  <cache>/entries/<key>  (0.32s)"
        paths = [Path(p) for p in line.split() if Path(p).parent.name == "entries" and Path(p).is_dir()]
        if paths:
            entries[line.split()[0]] = paths[0]
    return Build(entries, {label: entry_digests(path) for label, path in entries.items()})


def build_many(manifest: Path, names: list[str], root: Path) -> list[Build]:
    """:data:`BUILDS` in empty caches, then :data:`REBUILD` over the first cache."""
    builds = []
    for i, (env, reverse) in enumerate(BUILDS):
        builds.append(run_build(manifest, names[::-1] if reverse else names, root / f"cache{i}", env))
    env, reverse = REBUILD
    builds.append(run_build(manifest, names[::-1] if reverse else names, root / "cache0", env, rebuild=True))
    return builds


def differences(builds: list[Build], label: str) -> list[str]:
    """What differs between the builds of ``label``'s entry: its key, then each file (missing or other bytes)."""
    missing = [i for i, b in enumerate(builds) if label not in b.entries]
    if missing:
        return [f"builds {missing} made no entry for {label}"]
    out = []
    keys = [b.entries[label].name for b in builds]
    if len(set(keys)) > 1:
        out.append(f"cache key: {keys}")
    files = sorted(set().union(*(b.digests[label] for b in builds)))
    for rel in files:
        hashes = [b.digests[label].get(rel, "(missing)")[:12] for b in builds]
        if len(set(hashes)) > 1:
            out.append(f"{rel}: {hashes}")
    return out


def assert_reproducible(builds: list[Build], label: str) -> None:
    diff = differences(builds, label)
    n_files = len(builds[0].digests.get(label, {}))
    assert not diff, (f"{label}: {len(diff)} of {n_files} files differ between {len(builds)} builds "
                      f"(sha256 per build):\n  " + "\n  ".join(diff))


def once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], list[Build]]) -> list[Build]:
    """``make(dir)`` once per test session, also under pytest-xdist: the first worker builds, the others
    wait for its result (the builds are the expensive part, and their paths are part of the entries' keys)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's dir, shared by workers
    result = root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock"), timeout=3 * 3600):
        if not result.is_file():
            builds = make(root / name)
            result.write_text(json.dumps([[{k: str(v) for k, v in b.entries.items()}, b.digests] for b in builds]))
    return [Build({k: Path(v) for k, v in entries.items()}, digests) for entries, digests in json.loads(result.read_text())]


def toml_str(value: object) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


# ------------------------------------------------------------------------------ tokenizer kinds

#: Fixture -> what it trains or shrinks.  The built-ins train on the package corpus.
KINDS = {
    "tiny_llama": "SentencePiece-style BPE with byte fallback (LlamaTokenizer)",
    "tiny_gpt2": "byte-level BPE (GPT2Tokenizer)",
    "tiny_bert": "WordPiece (BertTokenizer)",
    "tiny_t5": "Unigram (T5Tokenizer)",
    "tiny_clip": "BPE with an end-of-word suffix (CLIPTokenizer)",
    "wordpiece_truncate": "real WordPiece tokenizer.json (MiniLM), truncate",
    "wordpiece_retrain": "real WordPiece tokenizer.json (MiniLM), retrain",
    "spm_bpe_trim": "real SentencePiece BPE .model (Mistral v1), spm-trim",
    "spm_bpe_truncate": "real SentencePiece BPE .model (Mistral v1), truncate",
    "spm_bpe_retrain": "real SentencePiece BPE .model (Mistral v1), retrain",
    "spm_unigram_trim": "real SentencePiece Unigram .model (botchan), spm-trim",
    "spm_unigram_truncate": "real SentencePiece Unigram .model (botchan), truncate",
    "spm_unigram_retrain": "real SentencePiece Unigram .model (botchan), retrain",
    "bytelevel_truncate": "byte-level BPE tokenizer.json, truncate",
    "bytelevel_retrain": "byte-level BPE tokenizer.json, retrain",
}


def make_sources(root: Path) -> dict[str, Path]:
    """Local source repos made of real tokenizer files (no weights), one per tokenizer kind."""
    from transformers import GPT2Config, GPT2Tokenizer, MistralConfig, T5Config

    root.mkdir(parents=True)
    minilm = root / "minilm"
    shutil.copytree(minilm_dir(), minilm, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "1_Pooling", "onnx", "openvino"))
    mistral = root / "mistral"
    mistral.mkdir()
    shutil.copyfile(mistral_sp_model("v1"), mistral / "tokenizer.model")
    MistralConfig(vocab_size=32000).save_pretrained(mistral)
    (mistral / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    unigram = root / "unigram"
    unigram.mkdir()
    shutil.copyfile(botchan_files()["unigram"], unigram / "tokenizer.model")
    T5Config(vocab_size=1000).save_pretrained(unigram)
    (unigram / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer", "extra_ids": 0}))
    bytelevel = root / "bytelevel"  # byte-level BPE training is deterministic; made once, shared by every build
    text = botchan_files()["text"].read_text(encoding="utf-8", errors="ignore").splitlines()
    big = GPT2Tokenizer().train_new_from_iterator(text, vocab_size=4000, show_progress=False)
    big.save_pretrained(bytelevel)
    GPT2Config(vocab_size=len(big), bos_token_id=0, eos_token_id=0).save_pretrained(bytelevel)
    return {"minilm": minilm, "mistral": mistral, "unigram": unigram, "bytelevel": bytelevel}


def make_tokenizer_builds(root: Path) -> list[Build]:
    """The sources, a manifest of :data:`KINDS` (built-ins plus CLIP and the shrunk sources), its builds."""
    root.mkdir(parents=True)
    sources = make_sources(root / "sources")
    shrinks = {  # fixture -> (source, method, vocab_size)
        "wordpiece_truncate": ("minilm", "truncate", 1000),
        "wordpiece_retrain": ("minilm", "retrain", 800),
        "spm_bpe_trim": ("mistral", "spm-trim", 1000),
        "spm_bpe_truncate": ("mistral", "truncate", 1000),
        "spm_bpe_retrain": ("mistral", "retrain", 800),
        "spm_unigram_trim": ("unigram", "spm-trim", 600),
        "spm_unigram_truncate": ("unigram", "truncate", 600),
        "spm_unigram_retrain": ("unigram", "retrain", 600),
        "bytelevel_truncate": ("bytelevel", "truncate", 600),
        "bytelevel_retrain": ("bytelevel", "retrain", 600),
    }
    lines = ['[fixtures.tiny_clip]', 'model_type = "clip"', 'architecture = "CLIPModel"', 'tokenizer = { vocab_size = 512 }']
    for name, (source, method, size) in shrinks.items():
        lines += [f"[fixtures.{name}]", f"source = {toml_str(sources[source])}",
                  f'tokenizer = {{ vocab_size = {size}, method = "{method}" }}']
    manifest = root / "fixtures.toml"
    manifest.write_text("\n".join(lines) + "\n")
    return build_many(manifest, list(KINDS), root)


@pytest.fixture(scope="module")
def tokenizer_builds(tmp_path_factory: pytest.TempPathFactory) -> list[Build]:
    return once_per_session(tmp_path_factory, "reproducible-tokenizers", make_tokenizer_builds)


@pytest.mark.parametrize("fixture", list(KINDS))
def test_tokenizer_builds_are_reproducible(tokenizer_builds: list[Build], fixture: str) -> None:
    """Every file of the entry is the same in every build (see the module docstring for what varies)."""
    assert_reproducible(tokenizer_builds, fixture)
    digests = tokenizer_builds[0].digests[fixture]
    assert "repo/tokenizer.json" in digests and "repo/model.safetensors" in digests, KINDS[fixture]


# ------------------------------------------------------------------------------ architectures

#: ~25 architectures of every modality: task -> model types.  Their tokenizers cover WordPiece, Unigram,
#: byte-level BPE, SentencePiece-style BPE and CLIP's suffixed BPE; the others have image processors or
#: feature extractors and image / audio datasets.
ARCHITECTURES = {
    "causal-lm": ["qwen2", "gemma", "opt"],
    "masked-lm": ["roberta", "albert", "distilbert", "big_bird"],
    "seq2seq-lm": ["bart", "mt5"],
    "sequence-classification": ["electra", "deberta-v2"],
    "image-classification": ["vit", "convnext", "resnet"],
    "object-detection": ["detr"],
    "semantic-segmentation": ["segformer"],
    "audio-classification": ["audio-spectrogram-transformer", "whisper"],
    "ctc": ["wav2vec2"],
    "image-text-to-text": ["llava", "blip-2"],
    "base": ["clip", "align"],
    "zero-shot-object-detection": ["owlvit"],
}


@pytest.mark.slow
def test_architectures_are_reproducible(tmp_path: Path) -> None:
    """A sample of architectures of every modality: every entry byte-identical in every build."""
    names, lines = [], []
    for task, model_types in ARCHITECTURES.items():
        name = "arch_" + task.replace("-", "_")
        names.append(name)
        lines += [f"[fixtures.{name}]", f'task = "{task}"', f"architectures = {json.dumps(model_types)}"]
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text("\n".join(lines) + "\n")
    builds = build_many(manifest, names, tmp_path)
    expected = sum(len(v) for v in ARCHITECTURES.values())
    labels = sorted(builds[0].entries)
    assert len(labels) == expected, f"built {labels}, expected {expected} entries"
    problems = {label: differences(builds, label) for label in labels}
    problems = {label: diff for label, diff in problems.items() if diff}
    assert not problems, f"{len(problems)} of {len(labels)} entries differ between {len(builds)} builds:\n" + "\n".join(
        f"  {label}: " + "; ".join(diff) for label, diff in problems.items())


# ------------------------------------------------------------------------------ processor tables

#: Model types whose processor entries transformers 5.25 adds only when their processor auto module is
#: imported (its ``MISSING_*`` tables), with a task of each: what they are must not depend on what the
#: process built before (resnet got ConvNext's or ViT's image processor, hubert no feature extractor).
LATE_ENTRIES = {"resnet": "image-classification", "blip-2": "image-text-to-text", "align": "base", "hubert": "ctc"}
TABLES = ("IMAGE_PROCESSOR_MAPPING_NAMES", "VIDEO_PROCESSOR_MAPPING_NAMES", "FEATURE_EXTRACTOR_MAPPING_NAMES",
          "PROCESSOR_MAPPING_NAMES")

#: What runs before the probe in a fresh interpreter: nothing, a text tokenizer build, what building a
#: multimodal fixture imports, or (tables and modalities only) an interpreter that cannot import PIL.
PRELUDES = {
    "first": "",
    "after-text": "from pytest_tinymodels.build.tokenizer.train import train_tokenizer\ntrain_tokenizer('bert', 300)\n",
    "after-multimodal": "import transformers.models.auto.processing_auto\n",
}
_NO_PIL = """
import importlib.machinery
_find = importlib.machinery.PathFinder.find_spec.__func__
def find_spec(cls, name, path=None, target=None):
    return None if name == "PIL" or name.startswith("PIL.") else _find(cls, name, path, target)
importlib.machinery.PathFinder.find_spec = classmethod(find_spec)
"""
_PROBE = """
import importlib.util, json
from pytest_tinymodels.build.architectures import auto_mapping_names, modality_of
late = {late!r}
out = {{"tables": {{n: auto_mapping_names(n) for n in {tables!r}}},
        "modality": {{mt: modality_of(mt, task) for mt, task in late.items()}}}}
if importlib.util.find_spec("PIL") is not None:
    from pytest_tinymodels.build.processors import tiny_feature_extractor, tiny_image_processor
    out["processors"] = {{mt: type(tiny_image_processor(mt)).__name__ for mt in late if mt != "hubert"}}
    out["processors"]["hubert"] = type(tiny_feature_extractor("hubert")).__name__
import transformers.models.auto.processing_auto  # everything imported now: a second read is the same
out["again"] = {{n: auto_mapping_names(n) for n in {tables!r}}} == out["tables"]
import transformers.models.auto.image_processing_auto as ipa, transformers.models.auto.feature_extraction_auto as fea
out["library"] = {{"IMAGE_PROCESSOR_MAPPING_NAMES": dict(ipa.IMAGE_PROCESSOR_MAPPING_NAMES),
                   "FEATURE_EXTRACTOR_MAPPING_NAMES": dict(fea.FEATURE_EXTRACTOR_MAPPING_NAMES)}}
print(json.dumps(out, sort_keys=True, default=str))
"""


def probe_tables(prelude: str) -> dict:
    code = prelude + _PROBE.format(late=LATE_ENTRIES, tables=TABLES)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_TINYMODELS_CACHE"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_processor_tables_do_not_depend_on_what_was_imported_before() -> None:
    results = {name: probe_tables(prelude) for name, prelude in PRELUDES.items()}
    results["without-PIL"] = probe_tables(_NO_PIL)
    first = results["first"]
    for name, result in results.items():
        assert result["again"], f"{name}: a table changed when the processor auto modules were imported later"
        assert result["tables"] == first["tables"], f"{name}: other processor tables than in a fresh process"
        assert result["modality"] == first["modality"], f"{name}: {result['modality']} != {first['modality']}"
        if "processors" in result and "processors" in first:
            assert result["processors"] == first["processors"], name
        for table, entries in result["library"].items():  # the complete tables transformers itself reads
            assert result["tables"][table] == entries, f"{name}: {table} is not the library's complete table"
    assert first["modality"]["hubert"] == "audio" and first["modality"]["resnet"] == "image"
    for model_type in ("resnet", "blip-2", "align"):
        assert model_type in first["tables"]["IMAGE_PROCESSOR_MAPPING_NAMES"], model_type
    assert "hubert" in first["tables"]["FEATURE_EXTRACTOR_MAPPING_NAMES"]
