"""End to end with the built-in fixtures: agreement, forward, one training step, generation."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

BUILTIN = ["tiny_llama", "tiny_gpt2", "tiny_bert", "tiny_t5"]


@pytest.fixture(params=BUILTIN)
def builtin(request: pytest.FixtureRequest):
    return request.getfixturevalue(request.param)


def test_model_and_tokenizer_agree(builtin) -> None:
    model, tokenizer, dataset = builtin
    config = model.config
    assert config.vocab_size == len(tokenizer)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        tok_id = getattr(tokenizer, name)
        if tok_id is not None and getattr(config, name, None) is not None:
            assert getattr(config, name) == tok_id, name
            assert 0 <= tok_id < config.vocab_size
    assert tokenizer.pad_token_id is not None
    max_pos = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if max_pos:
        assert tokenizer.model_max_length == max_pos
    batch = tokenizer(dataset["text"][:4], padding=True, truncation=True, return_tensors="pt")
    assert int(batch.input_ids.max()) < config.vocab_size
    unk = tokenizer.unk_token_id
    if unk is not None and unk not in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id):
        assert (batch.input_ids[batch.attention_mask == 1] == unk).sum() == 0, "corpus text must not need <unk>"


def test_tiny_llama_is_tiny_and_has_gqa(tiny_llama) -> None:
    config = tiny_llama.config
    assert config.num_key_value_heads < config.num_attention_heads
    assert config.num_attention_heads % config.num_key_value_heads == 0
    weights = Path(tiny_llama.path) / "model.safetensors"
    assert weights.stat().st_size < 1_000_000
    assert tiny_llama.recipe["tokenizer"]["class"] == "LlamaTokenizer"


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gpt2"])
def test_causal_lm_trains_one_step_and_generates(request: pytest.FixtureRequest, name: str) -> None:
    model, tokenizer, dataset = request.getfixturevalue(name)
    batch = tokenizer(dataset["text"][:4], padding=True, truncation=True, max_length=32, return_tensors="pt")
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(**batch, labels=labels).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    after = model(**batch, labels=labels).loss
    assert after < loss  # one step on the same batch lowers the loss
    model.eval()
    out = model.generate(batch.input_ids[:1], max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == batch.input_ids.shape[1] + 5
    assert isinstance(tokenizer.decode(out[0]), str)


def test_bert_masked_lm_step(tiny_bert) -> None:
    model, tokenizer, dataset = tiny_bert
    batch = tokenizer(dataset["text"][:4], padding=True, truncation=True, max_length=32, return_tensors="pt")
    labels = batch.input_ids.clone()
    masked = batch.input_ids.clone()
    masked[:, 1] = tokenizer.mask_token_id
    model.train()
    out = model(input_ids=masked, attention_mask=batch.attention_mask, labels=labels)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert out.logits.shape == (*masked.shape, len(tokenizer))
    assert tokenizer.decode(batch.input_ids[0], skip_special_tokens=True).strip()


def test_t5_seq2seq_step_and_generate(tiny_t5) -> None:
    model, tokenizer, dataset = tiny_t5
    src = tokenizer(dataset["text"][:2], padding=True, return_tensors="pt")
    tgt = tokenizer(dataset["text"][2:4], padding=True, return_tensors="pt").input_ids
    model.train()
    loss = model(**src, labels=tgt).loss
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    out = model.generate(**src, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 2 and out.shape[1] <= 5


def test_dataset_is_memory_mapped_text(tiny_llama) -> None:
    dataset = tiny_llama.dataset
    assert dataset.column_names == ["text"]
    assert len(dataset) == 32
    assert all(isinstance(t, str) and t for t in dataset["text"])
    assert dataset.cache_files, "loaded from disk, memory-mapped"


def test_same_spec_gives_bitwise_identical_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from pytest_tinymodels.build import build_entry
    from pytest_tinymodels.manifest import load_manifest

    spec = load_manifest()["tiny_llama"]
    a, b = tmp_path / "a", tmp_path / "b"
    build_entry(spec, a)
    build_entry(spec, b)
    wa, wb = load_file(a / "repo" / "model.safetensors"), load_file(b / "repo" / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "repo" / "tokenizer.json").read_bytes() == (b / "repo" / "tokenizer.json").read_bytes()
    assert (a / "dataset").is_dir()
    other = build_entry(spec._replace(seed=1), tmp_path / "c")
    wc = load_file(tmp_path / "c" / "repo" / "model.safetensors")
    assert other["architecture"] == "LlamaForCausalLM"
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_triple_api(tiny_gpt2) -> None:
    assert tiny_gpt2.processor is tiny_gpt2.tokenizer
    assert tiny_gpt2.config is tiny_gpt2.model.config
    assert "GPT2LMHeadModel" in repr(tiny_gpt2)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    again = AutoModelForCausalLM.from_pretrained(tiny_gpt2.path)
    assert AutoTokenizer.from_pretrained(tiny_gpt2.path).get_vocab() == tiny_gpt2.tokenizer.get_vocab()
    assert all(torch.equal(p, q) for p, q in zip(again.parameters(), tiny_gpt2.model.parameters()))


def test_get_fixture_outside_pytest(tmp_path: Path) -> None:
    from pytest_tinymodels import get_fixture

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.lm]\ntask = "causal-lm"\narchitectures = ["gpt2", "llama"]\n')
    model, tokenizer, _ = get_fixture("tiny_gpt2", cache_dir=str(tmp_path / "c"), dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and len(tokenizer) == model.config.vocab_size
    llama = get_fixture("lm", manifest=str(manifest), cache_dir=str(tmp_path / "c"), variant="llama")
    assert type(llama.model).__name__ == "LlamaForCausalLM"
    with pytest.raises(KeyError, match="variant="):
        get_fixture("lm", manifest=str(manifest), cache_dir=str(tmp_path / "c"))


def test_get_fixture_triples_are_independent_and_clean_up_their_dataset(tmp_path: Path) -> None:
    import gc

    from pytest_tinymodels import get_fixture

    cache_dir = str(tmp_path / "c")
    first, second = get_fixture("tiny_llama", cache_dir=cache_dir), get_fixture("tiny_llama", cache_dir=cache_dir)
    assert first.model is not second.model and first.tokenizer is not second.tokenizer
    with torch.no_grad():
        first.model.model.embed_tokens.weight.zero_()
    assert second.model.model.embed_tokens.weight.abs().sum() > 0
    model, tokenizer, dataset = first  # unpacked: the triple goes, the dataset and its files stay
    del first
    gc.collect()
    lengths = dataset.map(lambda row: {"n": len(row["text"])})
    scratch = Path(dataset.cache_files[0]["filename"]).parent
    assert scratch.is_dir() and not scratch.is_relative_to(tmp_path)  # map() wrote its cache there, not into the entry
    assert lengths.cache_files and Path(lengths.cache_files[0]["filename"]).parent == scratch
    entry_files = sorted(p.name for p in (second.entry / "dataset").iterdir())
    assert not any(name.startswith("cache-") for name in entry_files)
    del dataset, lengths
    gc.collect()
    assert not scratch.parent.exists()  # the private copy goes with the dataset


def test_text_task_on_a_multimodal_or_audio_model_type_gets_a_text_tokenizer(tmp_path: Path) -> None:
    from transformers import PreTrainedTokenizerBase

    from pytest_tinymodels import get_fixture

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.lm]\ntask = "causal-lm"\narchitectures = ["gemma3", "moshi"]\n')
    gemma3 = get_fixture("lm", manifest=str(manifest), cache_dir=str(tmp_path / "c"), variant="gemma3")
    assert gemma3.recipe["modality"] != "text" and isinstance(gemma3.tokenizer, PreTrainedTokenizerBase)
    moshi = get_fixture("lm", manifest=str(manifest), cache_dir=str(tmp_path / "c"), variant="moshi")
    assert (moshi.path / "tokenizer_config.json").exists()  # a text task trains one, even for an audio model type
    assert isinstance(moshi.tokenizer, PreTrainedTokenizerBase)
    ids = moshi.tokenizer(moshi.dataset[0]["text"], return_tensors="pt").input_ids[:, :8]
    assert moshi.model(input_ids=ids).logits.shape[:2] == ids.shape
