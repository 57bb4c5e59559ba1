"""One architecture per family of each task, through the real fixture path (manifest: ../fixtures.toml).

The full sweep over every installed architecture is a command (`python -m pytest_tinymodels coverage`),
not a test; this is its representative subset for CI.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _text_batch(processor, dataset, n: int = 2):
    tokenizer = getattr(processor, "tokenizer", processor)
    return tokenizer(dataset["text"][:n], padding=True, truncation=True, max_length=16, return_tensors="pt")


def _train_step(model, loss) -> None:
    assert torch.isfinite(loss), loss
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_causal_lm_family(family_causal_lm) -> None:
    model, processor, dataset = family_causal_lm
    batch = _text_batch(processor, dataset)
    model.train()
    _train_step(model, model(**batch, labels=batch.input_ids).loss)
    model.eval()
    out = model.generate(batch.input_ids[:1], max_new_tokens=2, do_sample=False)
    assert out.shape[1] >= batch.input_ids.shape[1] + 1


def test_masked_lm_family(family_masked_lm) -> None:
    model, processor, dataset = family_masked_lm
    batch = _text_batch(processor, dataset)
    model.train()
    _train_step(model, model(**batch, labels=batch.input_ids).loss)


def test_seq2seq_family(family_seq2seq) -> None:
    model, processor, dataset = family_seq2seq
    src, tgt = _text_batch(processor, dataset), _text_batch(processor, dataset[2:4])
    model.train()
    _train_step(model, model(**src, labels=tgt.input_ids).loss)
    model.eval()
    assert model.generate(**src, max_new_tokens=2).shape[0] == 2


def test_sequence_classification_family(family_sequence_classification) -> None:
    model, processor, dataset = family_sequence_classification
    batch = _text_batch(processor, dataset)
    model.train()
    _train_step(model, model(**batch, labels=torch.tensor([0, 1])).loss)


def test_image_classification_family(family_image_classification) -> None:
    model, processor, dataset = family_image_classification
    pixels = processor(images=[dataset[i]["image"] for i in range(2)], return_tensors="pt")
    model.train()
    _train_step(model, model(**pixels, labels=torch.tensor([0, 1])).loss)


def _audio(dataset, n: int = 2):
    rows = [dataset[i]["audio"] for i in range(n)]
    return [r["array"] for r in rows], rows[0]["sampling_rate"]


def test_ctc_family(family_ctc) -> None:
    model, processor, dataset = family_ctc
    waves, rate = _audio(dataset)
    extractor = getattr(processor, "feature_extractor", processor)
    inputs = extractor(waves, sampling_rate=rate, return_tensors="pt", padding=True)
    logits = model(**inputs).logits
    assert torch.isfinite(logits).all() and logits.shape[-1] == model.config.vocab_size


def test_speech_seq2seq_family(family_speech_seq2seq) -> None:
    model, processor, dataset = family_speech_seq2seq
    waves, rate = _audio(dataset)
    extractor = getattr(processor, "feature_extractor", processor)
    features = extractor(waves, sampling_rate=rate, return_tensors="pt")
    out = model.generate(**features, max_new_tokens=2)
    assert out.shape[0] == 2
