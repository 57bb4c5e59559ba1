"""Trained tiny models (issue 16): the ``train`` fixture key, build/train.py, tiny_llama_trained.

* the manifest validates ``train`` (unknown keys with did-you-mean, types, bounds) and the recipe is part of
  the cache key;
* a trained fixture's final loss is below 40 % of ln(vocabulary size); greedy ``generate`` from the first
  words of its rows continues with corpus words and stops with EOS (causal LM and seq2seq);
* two builds in two fresh processes and empty caches give byte-identical entries;
* ``--tiny-rebuild`` retrains a trained entry once per run;
* what cannot train says why; the training context restores the caller's torch settings;
* the hub's ``sshleifer/tiny-gpt2`` is a trained stand-in; ``coverage --train`` counts classes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tinymodels.errors import ManifestError
from pytest_tinymodels.manifest import parse_manifest_text

#: A small recipe for the tests that build their own trained fixtures (the built-in uses the defaults).
SMALL = "train = { steps = 60, batch_size = 4 }"
TIMING_KEYS = ("timings", "build_seconds", "built_at")


def _spec(body: str, name: str = "t"):
    return parse_manifest_text(f"[fixtures.{name}]\nmodel_type = 'llama'\n{body}\n", "fixtures.toml")[name]


# ----------------------------------------------------------------------------------------- manifest


def test_train_true_gives_the_defaults_and_a_table_overrides_them() -> None:
    from pytest_tinymodels.build.train import TRAIN_DEFAULTS

    assert _spec("train = true").train == TRAIN_DEFAULTS
    assert _spec("train = false").train is None and _spec("").train is None
    spec = _spec("train = { steps = 5, lr = 1 }")
    assert spec.train == {**TRAIN_DEFAULTS, "steps": 5, "lr": 1.0}
    assert isinstance(spec.train["lr"], float)


@pytest.mark.parametrize(("body", "field", "fragment"), [
    ("train = { stpes = 3 }", "train.stpes", "did you mean 'steps'"),
    ("train = { batchsize = 3 }", "train.batchsize", "did you mean 'batch_size'"),
    ("train = { steps = 2.5 }", "train.steps", "must be an integer"),
    ("train = { steps = true }", "train.steps", "must be an integer"),
    ("train = { lr = true }", "train.lr", "must be a number"),
    ("train = { lr = '1e-3' }", "train.lr", "must be a number"),
    ("train = { seq_len = 1 }", "train.seq_len", "between 2 and"),
    ("train = { batch_size = 0 }", "train.batch_size", "between 1 and"),
    ("train = { lr = 2.0 }", "train.lr", "between"),
    ("train = { lr = nan }", "train.lr", "between"),
    ("train = 300", "train", "true or false"),
    ("train = 'yes'", "train", "true or false"),
])
def test_train_table_is_validated(body: str, field: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        _spec(body, name="tiny_x")
    err = info.value
    assert (str(err.path), err.fixture, err.field) == ("fixtures.toml", "tiny_x", field), str(err)
    assert fragment in str(err), str(err)


def test_train_recipe_is_part_of_the_key_only_when_set() -> None:
    from pytest_tinymodels.build import key_fields
    from pytest_tinymodels.cache import cache_key

    plain, trained, longer = _spec(""), _spec("train = true"), _spec("train = { steps = 201 }")
    assert "train" not in plain.build_key_fields()
    assert trained.build_key_fields()["train"]["steps"] == 200
    keys = {cache_key(key_fields(s)) for s in (plain, trained, longer)}
    assert len(keys) == 3
    assert cache_key(key_fields(_spec("train = { steps = 200 }"))) == cache_key(key_fields(trained))


def test_builtin_trained_fixture_and_hub_stand_in() -> None:
    from pytest_tinymodels.hub.registry import load_hub_registry
    from pytest_tinymodels.manifest import load_manifest

    manifest = load_manifest()
    assert manifest["tiny_llama_trained"].train is not None and manifest["tiny_llama"].train is None
    target = load_hub_registry(manifest).resolve("model", "sshleifer/tiny-gpt2")
    assert target.spec.architecture == "GPT2LMHeadModel" and target.spec.train is not None
    assert target.label == "GPT2LMHeadModel (trained)"
    assert "train = {" in load_hub_registry(manifest).declaration_hint("model", "sshleifer/tiny-gpt2")


# ------------------------------------------------------------------------------------ unit pieces


def test_deterministic_cpu_restores_the_callers_settings() -> None:
    torch = pytest.importorskip("torch")
    from pytest_tinymodels.build.train import TRAIN_THREADS, deterministic_cpu

    before_threads, before_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    original_seed = torch.seed
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    with deterministic_cpu(7) as generator:
        assert torch.get_num_threads() == TRAIN_THREADS and torch.are_deterministic_algorithms_enabled()
        first = torch.rand(1, generator=generator)
        reseeded = torch.seed()  # Reformer reseeds so in training mode: from the stage's stream, not the OS
        after_reseed = torch.rand(1)
    assert torch.get_num_threads() == before_threads
    assert torch.are_deterministic_algorithms_enabled() == before_det
    assert torch.seed is original_seed
    assert torch.equal(torch.rand(1), expected_next), "the global RNG inside is forked: the caller's sequence goes on"
    with deterministic_cpu(7) as generator:
        assert torch.equal(torch.rand(1, generator=generator), first)
        assert torch.seed() == reseeded and torch.equal(torch.rand(1), after_reseed)


def _tiny_bert():
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    return BertForMaskedLM(config)


def test_what_cannot_train_says_why() -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels.build.datasets import build_dataset
    from pytest_tinymodels.build.train import TRAIN_DEFAULTS, TrainError, train_model, training_texts

    dataset = build_dataset("text", {"rows": 2})
    with pytest.raises(TrainError, match="causal-lm and seq2seq-lm fixtures; BertForMaskedLM is a masked-lm"):
        train_model(_tiny_bert(), object(), dataset, task="masked-lm", fmt="text", recipe=TRAIN_DEFAULTS)
    with pytest.raises(TrainError, match="no tokenizer"):
        train_model(_tiny_bert(), None, dataset, task="causal-lm", fmt="text", recipe=TRAIN_DEFAULTS)
    with pytest.raises(TrainError, match="format 'classification'.*set dataset.format"):
        training_texts(build_dataset("classification", {"rows": 2}), None, "classification")


def test_training_texts_of_the_text_formats() -> None:
    pytest.importorskip("datasets")
    from pytest_tinymodels.build.datasets import build_dataset
    from pytest_tinymodels.build.train import training_texts

    pc = build_dataset("prompt_completion", {"rows": 3})
    assert training_texts(pc, None, "prompt_completion") == [r["prompt"] + r["completion"] for r in pc]
    assert training_texts(build_dataset("text", {"rows": 3}), None, "text") == build_dataset("text", {"rows": 3})["text"]
    pref = build_dataset("preference", {"rows": 2})
    assert training_texts(pref, None, "preference") == [r["prompt"] + r["chosen"] for r in pref]


# ------------------------------------------------------------------------------------ trained models

@pytest.mark.slow
def test_tiny_llama_trained_reaches_the_loss_target_and_continues_its_rows(tiny_llama_trained) -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels.build.train import continuation_stats, stop_ids

    model, tokenizer, dataset = tiny_llama_trained
    train = tiny_llama_trained.recipe["train"]
    vocab = model.get_output_embeddings().weight.shape[0]
    assert train["vocab_size"] == vocab
    assert train["final_loss"] <= 0.4 * math.log(vocab) and train["reached_target"]
    assert train["final_loss"] < train["first_loss"] / 10
    assert train["steps"] == 200 and len(train["curve"]) >= 5 and train["curve"][-1][0] == 200
    stats = continuation_stats(model, tokenizer, dataset["text"][:20])
    assert stats["word_share"] >= 0.8, stats
    assert stats["eos"] >= 16, stats  # most continuations stop within 64 new tokens
    # the README's example: the first row's continuation is the row itself (learned), ending where the row ends
    row = dataset[0]["text"]
    prompt = tokenizer(" ".join(row.split()[:3]), return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=64, do_sample=False)
    assert tokenizer.decode(out[0], skip_special_tokens=True).split() == row.split()
    assert int(out[0, -1]) in stop_ids(model)


@pytest.mark.slow
def test_a_random_model_does_neither(tiny_llama) -> None:
    """The check above can fail: the untrained twin of tiny_llama_trained stops rarely and babbles."""
    from pytest_tinymodels.build.train import continuation_stats

    model, tokenizer, dataset = tiny_llama
    stats = continuation_stats(model, tokenizer, dataset["text"][:8])
    assert stats["eos"] < 4 or (stats["word_share"] or 0) < 0.5, stats


T5_MANIFEST = f"""
[fixtures.t5_trained]
model_type = "t5"
architecture = "T5ForConditionalGeneration"
dataset = {{ max_chars = 120 }}
train = {{ steps = 150 }}
"""


@pytest.mark.slow
def test_trained_seq2seq_writes_the_lead_sentence(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels import get_fixture
    from pytest_tinymodels.build.train import continuation_stats

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text(T5_MANIFEST)
    triple = get_fixture("t5_trained", manifest=str(manifest), cache_dir=str(tmp_path / "cache"))
    model, tokenizer, dataset = triple
    train = triple.recipe["train"]
    assert train["task"] == "seq2seq-lm" and train["dataset_format"] == "seq2seq" and train["reached_target"]
    stats = continuation_stats(model, tokenizer, dataset["text"][:12], examples=12)
    assert stats["eos"] >= 10 and stats["word_share"] >= 0.8, stats
    exact = sum(out.split() == target.split() for (_, out), target in zip(stats["examples"], dataset["target"]))
    assert exact >= 6, stats["examples"]  # the learned rule: the source's lead sentence


# -------------------------------------------------------------------------------------- determinism

REPRO_MANIFEST = f"""
[fixtures.repro_llama]
model_type = "llama"
dataset = {{ max_chars = 120 }}
{SMALL}

[fixtures.repro_t5]
model_type = "t5"
dataset = {{ max_chars = 120 }}
{SMALL}
"""


def _entry_digests(entry: Path) -> dict[str, str]:
    """sha256 of each file of an entry; recipe.json without its timings, COMPLETE.json left out (it records
    stat data and the recipe's hash)."""
    out = {}
    for path in sorted(p for p in entry.rglob("*") if p.is_file() and p.name != "COMPLETE.json"):
        data = path.read_bytes()
        if path.name == "recipe.json":
            recipe = {k: v for k, v in json.loads(data).items() if k not in TIMING_KEYS}
            data = json.dumps(recipe, sort_keys=True).encode()
        out[path.relative_to(entry).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def _build(manifest: Path, cache: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    full_env = {k: v for k, v in os.environ.items() if k != "PYTEST_TINYMODELS_CACHE"} | env
    cmd = [sys.executable, "-m", "pytest_tinymodels", "build", "--manifest", str(manifest), "--cache-dir", str(cache),
           "repro_llama", "repro_t5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    entries = sorted((cache / "entries").iterdir())
    assert len(entries) == 2
    return {json.loads((e / "recipe.json").read_text())["fixture"]: _entry_digests(e) for e in entries}


@pytest.mark.slow
def test_two_builds_in_two_empty_caches_are_byte_identical(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text(REPRO_MANIFEST)
    first = _build(manifest, tmp_path / "a", {"PYTHONHASHSEED": "1", "OMP_NUM_THREADS": "1"})
    second = _build(manifest, tmp_path / "b", {"PYTHONHASHSEED": "2", "OMP_NUM_THREADS": "2"})
    assert set(first) == {"repro_llama", "repro_t5"}
    for name in first:
        assert "repo/model.safetensors" in first[name]
        assert first[name] == second[name], name
    recipe = json.loads(next(p for p in (tmp_path / "a" / "entries").glob("*/recipe.json")).read_text())
    assert recipe["train"]["steps"] == 60 and recipe["train"]["threads"] == 1 and "train" in recipe["timings"]


# ------------------------------------------------------------------------------------ --tiny-rebuild

REBUILD_MANIFEST = f"""
[fixtures.tiny_taught]
model_type = "llama"
dataset = {{ rows = 8, max_chars = 120 }}
train = {{ steps = 20, batch_size = 2 }}
"""
USE_TAUGHT = """
def test_{name}(tiny_taught):
    assert tiny_taught.recipe["train"]["steps"] == 20
"""


@pytest.mark.slow
def test_tiny_rebuild_retrains_once_per_run(pytester: pytest.Pytester, cold_cache: Path,
                                            preloaded_libraries: None) -> None:
    pytester.makefile(".toml", fixtures=REBUILD_MANIFEST)
    pytester.makepyfile(test_a=USE_TAUGHT.format(name="a"), test_b=USE_TAUGHT.format(name="b"))
    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(passed=2)
    first.stdout.re_match_lines([r"tiny_taught +built in", r"1 built .*, 0 reused"])
    (entry,) = (cold_cache / "entries").iterdir()
    before = json.loads((entry / "recipe.json").read_text())
    before_written = (entry / "recipe.json").stat().st_mtime_ns
    again = pytester.runpytest("-p", "no:cacheprovider")
    again.stdout.re_match_lines([r"tiny_taught +reused"])
    rebuilt = pytester.runpytest("-p", "no:cacheprovider", "--tiny-rebuild")
    rebuilt.assert_outcomes(passed=2)
    rebuilt.stdout.re_match_lines([r"tiny_taught +built in", r"1 built .*, 0 reused"])  # two tests, one training
    (entry_after,) = (cold_cache / "entries").iterdir()
    after = json.loads((entry_after / "recipe.json").read_text())
    assert entry_after.name == entry.name
    assert after["timings"]["train"] > 0 and (entry_after / "recipe.json").stat().st_mtime_ns > before_written
    assert after["train"] == before["train"], "the retrained entry is the same entry (deterministic)"


# ------------------------------------------------------------------------------------------ coverage


@pytest.mark.slow
def test_coverage_train_counts_classes_that_reach_the_target(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from pytest_tinymodels.coverage import run_coverage

    report = run_coverage(["causal-lm"], tmp_path, include=["llama"], jobs=1, timeout_per_arch=600, progress=False,
                          train={"steps": 60, "lr": 0.01, "seq_len": 128, "batch_size": 8})
    (row,) = report["results"]
    assert row["trains"] is True and row["train_loss"] <= row["train_target"], row
    assert report["summary"]["causal-lm"]["trains"] == 1 and report["summary"]["causal-lm"]["train_tried"] == 1
    text = (tmp_path / "COVERAGE.md").read_text()
    assert "trains to target" in text and "| 1/1 |" in text
