"""What a user writes: no manifest, no downloads — the built-in fixtures just work."""

import torch


def test_generate(tiny_llama):
    model, tokenizer, dataset = tiny_llama
    ids = tokenizer(dataset[0]["text"], return_tensors="pt").input_ids.to(model.device)
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4


def test_one_training_step(tiny_gpt2):
    model, tokenizer, dataset = tiny_gpt2
    batch = tokenizer(dataset["text"][:4], padding=True, return_tensors="pt")
    model.train()
    loss = model(**batch, labels=batch.input_ids).loss
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert torch.isfinite(loss)


def test_fill_mask(tiny_bert):
    from transformers import pipeline

    fill = pipeline("fill-mask", model=tiny_bert.model, tokenizer=tiny_bert.tokenizer)
    assert len(fill(f"the cat sat on the {tiny_bert.tokenizer.mask_token}.")) == 5


def test_translate_shape(tiny_t5):
    model, tokenizer, _ = tiny_t5
    batch = tokenizer(["translate English to German: hello"], return_tensors="pt")
    assert model.generate(**batch, max_new_tokens=3).shape[0] == 1


def test_paths_work_with_from_pretrained(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoModelForCausalLM.from_pretrained(tiny_llama.path).config.model_type == "llama"
    assert len(AutoTokenizer.from_pretrained(tiny_llama.path)) == len(tiny_llama.tokenizer)
