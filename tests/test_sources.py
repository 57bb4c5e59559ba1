"""Real sources and downloads through fixtures: shrink real configs/tokenizers, fetch tiny repos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from realfiles import botchan_files, minilm_dir, mistral_sp_models

torch = pytest.importorskip("torch")

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Tiny models make test suites fast, and nobody needs to download anything.",
    "I have been playing always a losing game since my childhood.",
]


def _session(manifest_text: str, manifest_dir: Path, cache: Path):
    from pytest_tinymodels.cache import Cache
    from pytest_tinymodels.manifest import load_manifest

    from pytest_tinymodels.session import TinySession

    path = manifest_dir / "fixtures.toml"
    path.write_text(manifest_text)
    return TinySession(load_manifest(path), Cache(cache))


def _get(session, name: str):
    (variant,) = session.variants(name)
    return session.load(variant).fresh()


def _roundtrip(tokenizer, text: str) -> str:
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def test_minilm_source_builds_tiny_bert(tmp_path: Path) -> None:
    session = _session(
        f'[fixtures.tiny_minilm]\nsource = "{minilm_dir()}"\ntokenizer = {{ vocab_size = 1000 }}\n', tmp_path, tmp_path / "c"
    )
    model, tokenizer, dataset = _get(session, "tiny_minilm")
    assert type(model).__name__ == "BertModel"  # the architecture the real config declares
    assert len(tokenizer) <= 1000 and model.config.vocab_size == len(tokenizer)
    real = json.loads((minilm_dir() / "config.json").read_text())
    assert model.config.hidden_act == real["hidden_act"] and model.config.hidden_size < real["hidden_size"]
    for text in ENGLISH:
        ids = tokenizer(text).input_ids
        assert tokenizer.unk_token_id not in ids
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert _roundtrip(tokenizer, text) == text.lower()
    out = model(**tokenizer(ENGLISH, padding=True, return_tensors="pt"))
    assert torch.isfinite(out.last_hidden_state).all()
    assert not list((Path(model.name_or_path)).glob("*.bin"))
    recipe = json.loads((Path(model.name_or_path).parent / "recipe.json").read_text())
    assert recipe["tokenizer"]["source"] == str(minilm_dir())


def test_minilm_source_with_task_picks_that_head(tmp_path: Path) -> None:
    session = _session(
        f'[fixtures.mlm]\nsource = "{minilm_dir()}"\ntask = "masked-lm"\ntokenizer = {{ vocab_size = 800 }}\n',
        tmp_path, tmp_path / "c",
    )
    model, tokenizer, _ = _get(session, "mlm")
    assert type(model).__name__ == "BertForMaskedLM"
    logits = model(**tokenizer(ENGLISH[:1], return_tensors="pt")).logits
    assert logits.shape[-1] == len(tokenizer)


def _mistral_repo(root: Path, sp_model: Path) -> Path:
    """A Mistral repo as on the Hub (config + SentencePiece model), made of real files."""
    from transformers import MistralConfig

    repo = root / "mistral-like"
    repo.mkdir()
    shutil.copyfile(sp_model, repo / "tokenizer.model")
    MistralConfig(vocab_size=32000).save_pretrained(repo)
    (repo / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    return repo


def test_mistral_sentencepiece_source(tmp_path: Path) -> None:
    sp_model = next(p for p in mistral_sp_models() if p.name.endswith(".v1"))
    repo = _mistral_repo(tmp_path, sp_model)
    session = _session('[fixtures.tiny_mistral]\nsource = "mistral-like"\ntokenizer = { vocab_size = 1000 }\n',
                       tmp_path, tmp_path / "c")
    model, tokenizer, dataset = _get(session, "tiny_mistral")
    assert type(model).__name__ == "MistralForCausalLM"
    assert len(tokenizer) <= 1000 and model.config.vocab_size == len(tokenizer)
    for text in ENGLISH:
        back = _roundtrip(tokenizer, text)
        assert back == text and "\u2581" not in back
    assert model.config.eos_token_id == tokenizer.eos_token_id and model.config.bos_token_id == tokenizer.bos_token_id
    ids = tokenizer(dataset["text"][:2], padding=True, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids.input_ids.shape[1] + 3
    assert repo.is_dir()


def test_byte_level_bpe_source(tmp_path: Path) -> None:
    from transformers import GPT2Config, GPT2Tokenizer

    text = botchan_files()["text"].read_text(encoding="utf-8", errors="ignore").splitlines()
    big = GPT2Tokenizer().train_new_from_iterator(text, vocab_size=4000, show_progress=False)
    repo = tmp_path / "gpt2-like"
    big.save_pretrained(repo)
    GPT2Config(vocab_size=len(big)).save_pretrained(repo)
    session = _session('[fixtures.bl]\nsource = "gpt2-like"\ntokenizer = { vocab_size = 600 }\n', tmp_path, tmp_path / "c")
    model, tokenizer, _ = _get(session, "bl")
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert len(tokenizer) <= 600
    for sample in ENGLISH + ["naïve café — 日本語 🚀"]:
        assert _roundtrip(tokenizer, sample) == sample


def test_local_source_edit_gives_new_entry(tmp_path: Path) -> None:
    repo = tmp_path / "src"
    shutil.copytree(minilm_dir(), repo, ignore=shutil.ignore_patterns("*.safetensors", "1_Pooling"))
    session = _session('[fixtures.m]\nsource = "src"\n', tmp_path, tmp_path / "c")
    key1 = session.key(session.variants("m")[0].spec)
    config = json.loads((repo / "config.json").read_text())
    config["hidden_act"] = "relu"
    (repo / "config.json").write_text(json.dumps(config))
    assert session.key(session.variants("m")[0].spec) != key1


def test_missing_source_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_tinymodels.errors import TinyModelsError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    session = _session('[fixtures.x]\nsource = "nobody/nothing-here"\n', tmp_path, tmp_path / "c")
    with pytest.raises(TinyModelsError) as info:
        _get(session, "x")
    assert "nobody/nothing-here" in str(info.value)
    assert not (tmp_path / "c" / "entries").exists() or not list((tmp_path / "c" / "entries").iterdir())


def test_download_from_loopback_hub_then_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`download = "org/tiny"` fetches a prebuilt tiny repo once over real HTTP, then works offline."""
    from pytest_tinymodels import get_fixture
    from pytest_tinymodels.hub.server import HubServer, hub_environment, serve_directory

    # a prebuilt tiny repo, as the hf-internal-testing ones are: made here by our own builder
    tiny = get_fixture("tiny_gpt2", cache_dir=str(tmp_path / "build-cache"))
    hub_root = tmp_path / "hub"
    shutil.copytree(tiny.path, hub_root / "tiny-org" / "tiny-random-gpt2")
    (hub_root / "tiny-org" / "tiny-random-gpt2" / "pytorch_model.bin").write_bytes(b"not a pickle you want")
    manifest = '[fixtures.dl]\ndownload = "tiny-org/tiny-random-gpt2"\n'
    hf_cache = tmp_path / "hf-cache"
    with HubServer(serve_directory(hub_root)) as server:
        with hub_environment(endpoint=server.endpoint, cache_dir=hf_cache, offline=False):
            session = _session(manifest, tmp_path, tmp_path / "c1")
            model, tokenizer, dataset = _get(session, "dl")
        requests_online = len(server.requests)
    assert requests_online > 0
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert tokenizer.get_vocab() == tiny.tokenizer.get_vocab()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), tiny.model.parameters()))
    entry = next((tmp_path / "c1" / "entries").iterdir())
    assert not list(entry.rglob("*.bin")), "pickles are never downloaded"
    # server gone, offline: a fresh tinymodels cache still resolves through the hub cache
    with hub_environment(endpoint="http://127.0.0.1:9", cache_dir=hf_cache, offline=True):
        session = _session(manifest, tmp_path, tmp_path / "c2")
        model2, _, _ = _get(session, "dl")
    assert all(torch.equal(a, b) for a, b in zip(model2.parameters(), tiny.model.parameters()))
