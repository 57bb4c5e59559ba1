"""Every causal-LM architecture on the GPU: forward and one training step (run with --tiny-device cuda).

    cd benchmarks/gpu && python -m pytest --tiny-device cuda --tiny-dtype bfloat16 -q

Plain language models get real text through their tokenizer; models whose forward needs more than
``input_ids`` (audio codebooks, image tokens, shared KV states) get the inputs the fixture build
verified (:func:`pytest_tinymodels.smoke.dummy_inputs`).
"""

import math

import torch

from pytest_tinymodels.smoke import dummy_inputs

_TEXT_ONLY = {"input_ids", "attention_mask", "labels"}

#: Model types whose training forward takes one sequence length only: config -> that length.
TRAINING_LENGTH = {
    # axial position embeddings: in training, the sequence length must equal prod(axial_pos_shape)
    "reformer": lambda config: math.prod(config.axial_pos_shape),
}


def _batch(model, processor, dataset):
    inputs = dummy_inputs(model, task="causal-lm", labels=True)
    if set(inputs) <= _TEXT_ONLY and tuple(inputs["input_ids"].shape) == tuple(inputs["labels"].shape):
        tokenizer = getattr(processor, "tokenizer", processor)  # multimodal model types ship a processor
        fixed = TRAINING_LENGTH.get(model.config.model_type)
        length = fixed(model.config) if fixed else 16
        enc = tokenizer(dataset["text"][:2], padding="max_length" if fixed else True, truncation=True,
                        max_length=length, return_tensors="pt")
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": enc["input_ids"]}
    return {k: (v.to(model.device, model.dtype) if v.is_floating_point() else v.to(model.device))
            if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def test_forward_and_one_training_step(tiny_causal_lm):
    model, processor, dataset = tiny_causal_lm
    model.train()
    out = model(**_batch(model, processor, dataset))
    loss = out.loss if getattr(out, "loss", None) is not None else out[0].float().square().mean()  # draft models
    assert torch.isfinite(loss), loss
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
