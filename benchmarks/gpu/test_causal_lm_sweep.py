"""Every causal-LM architecture on the GPU: forward and one training step (run with --tiny-device cuda).

    cd benchmarks/gpu && python -m pytest --tiny-device cuda --tiny-dtype bfloat16 -q
"""

import torch


def test_forward_and_one_training_step(tiny_causal_lm):
    model, processor, dataset = tiny_causal_lm
    tokenizer = getattr(processor, "tokenizer", processor)  # multimodal model types ship a processor
    batch = tokenizer(dataset["text"][:2], padding=True, truncation=True, max_length=16, return_tensors="pt")
    batch = {k: v.to(model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
    model.train()
    out = model(**batch, labels=batch["input_ids"])
    assert torch.isfinite(out.loss), out.loss
    out.loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
