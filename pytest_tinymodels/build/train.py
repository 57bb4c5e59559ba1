"""Train a freshly built tiny model for a few hundred steps on its fixture's text (the ``train`` key).

A random tiny model generates noise; a trained one continues the text it learned and stops with EOS, so
tests of generation strategies, stopping criteria or "outputs stay close" have something to compare.
The build calls :func:`train_entry` after the model is made (in float32, before any cast) and before the
smoke check and the save: the cache stores the trained weights, and the recipe (part of the key) records
the loss curve.

* causal LMs (``causal-lm``): the rows of the fixture's dataset (:func:`training_texts`: ``text``, or the
  prompt and completion, the chosen answer, the chat-templated conversation of the other formats) are
  tokenized as ``tokenizer(text)`` does, each followed by EOS so the model learns to stop; every batch
  holds ``batch_size`` windows of ``seq_len`` tokens that start at rows drawn with a seeded generator (a
  window runs on into the rows after its own); labels = the input ids.  Inputs beyond the token ids (a
  family's ``token_type_ids``...) come from the public :func:`.inputs.model_inputs`.
* seq2seq LMs (``seq2seq-lm``): the dataset's (source, target) pairs (:data:`SEQ2SEQ_PAIRS`: the
  ``seq2seq`` format's text and lead sentence...), ``batch_size`` pairs a step, targets padded with -100.

Deterministic on the CPU, the same bytes on every machine with the same library versions: the steps run
with :data:`TRAIN_THREADS` torch thread(s) (restored afterwards: a float reduction split over another
number of threads sums in another order), ``torch.use_deterministic_algorithms(True)``, a seeded
``torch.Generator`` for the batches, the global RNG forked and seeded, and dropout off (the model trains in
eval mode: no dropout draws at all).  A class that cannot train raises :class:`TrainError` saying why.

Only the standard library at module level: the manifest validates ``train`` with :func:`check_train`.
"""

from __future__ import annotations

import difflib
import math
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from ..errors import BuildError, ManifestError

if TYPE_CHECKING:
    import torch
    from datasets import Dataset

    from ..manifest import FixtureSpec
    from .architectures import ArchInfo

__all__ = ["TRAIN_DEFAULTS", "TRAIN_KEYS", "TRAIN_LIMITS", "TRAIN_THREADS", "TRAINABLE_TASKS", "SEQ2SEQ_PAIRS",
           "TEXT_COLUMNS", "LOSS_TARGET_FRACTION", "TrainError", "check_train", "loss_target", "training_texts",
           "token_rows", "train_model", "train_entry", "deterministic_cpu", "stop_ids", "corpus_words",
           "continuation_stats"]

#: What ``train = true`` means, and what a ``train = { ... }`` table starts from (measured: the smallest
#: steps x size that meet the targets of benchmarks/RESULTS.md "Trained fixtures").
TRAIN_DEFAULTS: dict[str, Any] = {"steps": 200, "lr": 0.01, "seq_len": 128, "batch_size": 8}
#: Keys of the ``train`` table and the types each accepts (``lr`` may be written as an integer).
TRAIN_KEYS: dict[str, tuple[type, ...]] = {"steps": (int,), "lr": (float, int), "seq_len": (int,),
                                           "batch_size": (int,)}
#: Inclusive bounds of each key.
TRAIN_LIMITS: dict[str, tuple[float, float]] = {"steps": (1, 100_000), "lr": (1e-8, 1.0), "seq_len": (2, 8192),
                                                "batch_size": (1, 1024)}
#: torch threads while training: one, on every machine (see the module docstring and RESULTS.md).
TRAIN_THREADS = 1
#: The loss target of a trained model: this fraction of ln(vocabulary size) (a uniform guess's loss).
LOSS_TARGET_FRACTION = 0.4
#: Points of the loss curve kept in the recipe (evenly spaced steps, the first and the last included).
CURVE_POINTS = 9
#: Warm-up steps (linear), at most a tenth of the steps; then a cosine decay to a tenth of ``lr``.
WARMUP_STEPS = 10
MIN_LR_FRACTION = 0.1
#: Gradient-norm clip (tiny models at lr 1e-2 otherwise spike in the first steps).
CLIP_NORM = 1.0

#: dataset format -> the columns whose text, joined, is one training text of a causal LM.  Conversational
#: formats (columns of messages) are joined and rendered with the tokenizer's chat template.
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "language_modeling": ("text",),
    "seq2seq": ("text",),
    "prompt_completion": ("prompt", "completion"),
    "preference": ("prompt", "chosen"),
    "implicit_preference": ("chosen",),
    "chat": ("messages",),
    "conversational_language_modeling": ("messages",),
    "conversational_prompt_completion": ("prompt", "completion"),
    "conversational_preference": ("prompt", "chosen"),
    "conversational_implicit_preference": ("chosen",),
}
#: dataset format -> (source column, target column) of a seq2seq LM.
SEQ2SEQ_PAIRS: dict[str, tuple[str, str]] = {
    "seq2seq": ("text", "target"),
    "prompt_completion": ("prompt", "completion"),
    "preference": ("prompt", "chosen"),
}
#: The tasks that train (their dataset is the text they learn).
TRAINABLE_TASKS = ("causal-lm", "seq2seq-lm")
#: Model types whose forward refuses to train in eval mode (Reformer's reversible layers assert
#: ``model.training``): they train in training mode, their dropout drawing from the seeded, forked RNG.
TRAIN_MODE_MODEL_TYPES = frozenset({"reformer"})


class TrainError(BuildError):
    """A model that cannot be trained here (its task, its inputs, its dataset format): the reason says why."""


# ----------------------------------------------------------------------------------------- manifest


def check_train(value: Any, *, path: Path | str | None = None, fixture: str | None = None) -> dict[str, Any] | None:
    """The ``train`` value of a manifest fixture, validated: ``true`` -> :data:`TRAIN_DEFAULTS`, ``false`` -> None,
    a table -> the defaults updated with it.  A :class:`ManifestError` (naming the file, the fixture and the
    field, with the close key names) for an unknown key, a wrong type or a value out of bounds."""
    if value is False:
        return None
    if value is True:
        return dict(TRAIN_DEFAULTS)
    if not isinstance(value, dict):
        raise ManifestError(f"must be true, false or a table, got {type(value).__name__} {value!r}", path=path,
                            fixture=fixture, field="train", hint="e.g. train = { steps = 300 }")
    for key, item in value.items():
        if key not in TRAIN_KEYS:
            close = difflib.get_close_matches(key, list(TRAIN_KEYS), n=1)
            raise ManifestError(f"unknown key {key!r}", path=path, fixture=fixture, field=f"train.{key}",
                                hint=f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(TRAIN_KEYS)}")
        types = TRAIN_KEYS[key]
        if isinstance(item, bool) or not isinstance(item, types):
            kind = "a number" if float in types else "an integer"
            raise ManifestError(f"must be {kind}, got {type(item).__name__} {item!r}", path=path, fixture=fixture,
                                field=f"train.{key}")
        low, high = TRAIN_LIMITS[key]
        if not (low <= item <= high) or (isinstance(item, float) and not math.isfinite(item)):
            raise ManifestError(f"must be between {low:g} and {high:g}, got {item!r}", path=path, fixture=fixture,
                                field=f"train.{key}")
    recipe = {**TRAIN_DEFAULTS, **value}
    recipe["lr"] = float(recipe["lr"])
    return recipe


def loss_target(vocab_size: int) -> float:
    """The loss a trained model must reach: :data:`LOSS_TARGET_FRACTION` of ln(``vocab_size``)."""
    return LOSS_TARGET_FRACTION * math.log(vocab_size)


# ------------------------------------------------------------------------------------------- data


def training_texts(dataset: "Dataset", tokenizer: Any, fmt: str) -> list[str]:
    """One text per row of a dataset of format ``fmt`` (:data:`TEXT_COLUMNS`); conversational rows rendered
    with ``tokenizer``'s chat template.  :class:`TrainError` for a format that holds no text to learn."""
    columns = TEXT_COLUMNS.get(fmt)
    if columns is None:
        raise TrainError(f"a causal LM cannot train on the dataset format {fmt!r}: formats with text to learn are "
                         f"{', '.join(TEXT_COLUMNS)} (set dataset.format)", stage="train")
    texts = []
    for row in dataset:
        parts = [row[c] for c in columns]
        if all(isinstance(p, str) for p in parts):
            texts.append("".join(parts))
            continue
        messages = [m for p in parts for m in p]
        if not getattr(tokenizer, "chat_template", None):
            raise TrainError(f"the dataset format {fmt!r} holds conversations and the tokenizer has no chat template "
                             "(set tokenizer.chat_template, or a text dataset.format)", stage="train")
        texts.append(tokenizer.apply_chat_template(messages, tokenize=False))
    return texts


def stop_ids(model: Any) -> list[int]:
    """The ids ``model.generate`` stops at (its generation config's ``eos_token_id``, one or a list)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
    return [i for i in eos if isinstance(i, int)]


def _eos_id(tokenizer: Any, model: Any) -> int:
    """The id a training text ends with: the tokenizer's EOS where ``generate`` stops at it (or nothing says where
    it stops), else the first id ``generate`` stops at (a chat family's end of turn); a tokenizer without EOS
    (BERT's WordPiece, as in BertLMHeadModel) ends texts with its SEP, which ``generate`` is then told to stop at."""
    eos, stops = getattr(tokenizer, "eos_token_id", None), stop_ids(model)
    if stops and eos not in stops:
        eos = stops[0]
    if eos is None and not stops:
        eos = getattr(tokenizer, "sep_token_id", None)
        generation = getattr(model, "generation_config", None)
        if isinstance(eos, int) and generation is not None:
            generation.eos_token_id = eos
    if not isinstance(eos, int):
        raise TrainError(f"{type(tokenizer).__name__} has no EOS (nor SEP) token to end the training texts with",
                         stage="train")
    return eos


def token_rows(texts: Sequence[str], tokenizer: Any, eos_id: int) -> list[list[int]]:
    """Each text as ``tokenizer(text)`` tokenizes it (with its special tokens), ending with ``eos_id``."""
    rows = []
    for ids in tokenizer(list(texts))["input_ids"]:
        ids = list(ids)
        if not ids or ids[-1] != eos_id:
            ids.append(eos_id)
        rows.append(ids)
    return rows


# --------------------------------------------------------------------------------- determinism


@contextmanager
def deterministic_cpu(seed: int, threads: int = TRAIN_THREADS) -> Iterator["torch.Generator"]:
    """Within: ``threads`` torch threads, deterministic algorithms, the global RNG forked and seeded with
    ``seed``, and ``torch.seed()`` (which reseeds from the OS: Reformer draws its per-layer dropout and LSH
    seeds so in training mode) drawing from a stream seeded with ``seed``; yields a ``torch.Generator`` seeded
    with ``seed`` for the batches.  Everything is restored afterwards (the thread count, the deterministic
    flags, ``torch.seed``, the caller's RNG state)."""
    import torch
    import torch.random

    seeds = torch.Generator().manual_seed(seed + 1)
    original_seed = torch.random.seed

    def stream_seed() -> int:
        value = int(torch.randint(0, 2**62, (1,), generator=seeds))
        torch.manual_seed(value)
        return value

    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.seed = torch.random.seed = stream_seed
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield torch.Generator().manual_seed(seed)
    finally:
        torch.seed = torch.random.seed = original_seed
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)
        torch.set_num_threads(old_threads)


# --------------------------------------------------------------------------------------- batches


class _CausalBatches:
    """Windows of ``seq_len`` tokens over the rows joined, each starting at a row start drawn with the
    generator; the model's other inputs (:func:`.inputs.model_inputs`) built once."""

    def __init__(self, model: Any, rows: list[list[int]], seq_len: int, batch_size: int, config: Any) -> None:
        import torch

        from .inputs import InputsError, SmokeError, model_inputs, takes_argument

        stream = [i for row in rows for i in row]
        self.seq_len = max(1, min(seq_len, len(stream) - 1))
        starts, at = [], 0
        for row in rows:
            starts.append(at)
            at += len(row)
        self.stream = torch.tensor(stream + stream[: self.seq_len], dtype=torch.long)  # a window may wrap around
        self.starts = torch.tensor(starts, dtype=torch.long)
        self.batch_size = batch_size
        try:
            base = model_inputs(model, None, task="causal-lm", batch_size=batch_size, seq_len=self.seq_len,
                                labels=True, config=config)
        except (InputsError, SmokeError) as exc:
            raise TrainError(f"{type(model).__name__} gets no training inputs: {exc}", stage="train") from None
        ids = base.get("input_ids")
        if ids is None or "labels" not in base:
            raise TrainError(f"{type(model).__name__} is not fed token ids and labels (its inputs: "
                             f"{', '.join(sorted(base))}): it cannot learn the text", stage="train")
        if tuple(ids.shape) != (batch_size, self.seq_len) or tuple(base["labels"].shape) != tuple(ids.shape):
            raise TrainError(f"{type(model).__name__} takes token ids of shape {tuple(ids.shape)} and labels of "
                             f"shape {tuple(base['labels'].shape)}, not one row of tokens per example", stage="train")
        self.base = {k: v for k, v in base.items() if k not in ("input_ids", "labels", "attention_mask")}
        if takes_argument(model, "use_cache"):  # in eval mode a cache (RWKV's state) would be updated in place
            self.base["use_cache"] = False
        self.mask = "attention_mask" in base

    def batch(self, generator: "torch.Generator") -> dict[str, Any]:
        import torch

        picks = self.starts[torch.randint(0, len(self.starts), (self.batch_size,), generator=generator)]
        ids = torch.stack([self.stream[s: s + self.seq_len] for s in picks.tolist()])
        return self._inputs(ids)

    def _inputs(self, ids: "torch.Tensor") -> dict[str, Any]:
        import torch

        out = dict(self.base, input_ids=ids, labels=ids.clone())
        if self.mask:
            out["attention_mask"] = torch.ones_like(ids)
        return out

    def all_batches(self) -> Iterator[tuple[dict[str, Any], int]]:
        """One window from every row start, as the steps draw them, ``batch_size`` a batch (the last batch
        filled up with the first windows again): for the final loss."""
        import torch

        count = -(-len(self.starts) // self.batch_size) * self.batch_size
        picks = self.starts[torch.arange(count) % len(self.starts)]
        for i in range(0, count, self.batch_size):
            ids = torch.stack([self.stream[s: s + self.seq_len] for s in picks[i: i + self.batch_size].tolist()])
            yield self._inputs(ids), ids.numel()


class _Seq2SeqBatches:
    """``batch_size`` (source, target) pairs a step, drawn with the generator; sources padded with the pad id
    (masked), targets with -100."""

    def __init__(self, sources: list[list[int]], targets: list[list[int]], pad_id: int, batch_size: int,
                 use_cache: bool) -> None:
        self.sources, self.targets, self.pad_id, self.batch_size = sources, targets, pad_id, batch_size
        self.extra = {"use_cache": False} if use_cache else {}

    def _inputs(self, picks: list[int]) -> dict[str, Any]:
        import torch

        src = [self.sources[i] for i in picks]
        tgt = [self.targets[i] for i in picks]
        width, tgt_width = max(map(len, src)), max(map(len, tgt))
        ids = torch.tensor([s + [self.pad_id] * (width - len(s)) for s in src], dtype=torch.long)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in src], dtype=torch.long)
        labels = torch.tensor([t + [-100] * (tgt_width - len(t)) for t in tgt], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, **self.extra}

    def batch(self, generator: "torch.Generator") -> dict[str, Any]:
        import torch

        return self._inputs(torch.randint(0, len(self.sources), (self.batch_size,), generator=generator).tolist())

    def all_batches(self) -> Iterator[tuple[dict[str, Any], int]]:
        for i in range(0, len(self.sources), self.batch_size):
            picks = list(range(i, min(i + self.batch_size, len(self.sources))))
            yield self._inputs(picks), sum(len(self.targets[j]) for j in picks)


def _seq2seq_batches(dataset: "Dataset", tokenizer: Any, fmt: str, recipe: Mapping[str, Any], model: Any) -> _Seq2SeqBatches:
    pair = SEQ2SEQ_PAIRS.get(fmt)
    if pair is None:
        raise TrainError(f"a seq2seq LM cannot train on the dataset format {fmt!r}: formats of (source, target) "
                         f"pairs are {', '.join(SEQ2SEQ_PAIRS)} (set dataset.format)", stage="train")
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = getattr(model.config, "pad_token_id", None)
    if not isinstance(pad, int):
        raise TrainError(f"{type(tokenizer).__name__} has no pad token to batch the sources with", stage="train")
    eos = _eos_id(tokenizer, model)
    limit = recipe["seq_len"]
    sources = [ids[:limit] for ids in token_rows(dataset[pair[0]], tokenizer, eos)]
    targets = [ids[:limit] for ids in token_rows(dataset[pair[1]], tokenizer, eos)]
    from .inputs import takes_argument

    return _Seq2SeqBatches(sources, targets, pad, recipe["batch_size"], takes_argument(model, "use_cache"))


# ---------------------------------------------------------------------------------------- training


def _lr_factor(step: int, steps: int) -> float:
    """Linear warm-up over ``min(WARMUP_STEPS, steps // 10)`` steps, then a cosine decay to MIN_LR_FRACTION."""
    warmup = min(WARMUP_STEPS, steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))


def _required_seq_len(config: Any) -> int | None:
    """The one sequence length a model trains at, or None: axial position embeddings (Reformer) need the
    product of ``axial_pos_shape`` in training mode."""
    shape = getattr(config, "axial_pos_shape", None)
    if getattr(config, "axial_pos_embds", False) and isinstance(shape, (list, tuple)) and shape:
        return math.prod(int(n) for n in shape)
    return None


def _max_positions(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 1:
            return value
    return None


def train_model(model: Any, tokenizer: Any, dataset: "Dataset", *, task: str, fmt: str,
                recipe: Mapping[str, Any], seed: int = 0, config: Any = None) -> dict[str, Any]:
    """Train ``model`` (float32, CPU) in place on ``dataset`` (format ``fmt``) as :data:`TRAIN_DEFAULTS`-like
    ``recipe`` says; return the recipe section: the settings, the loss curve and the final loss (the mean
    loss over the training data once, after the last step) against :func:`loss_target`.

    Deterministic (see :func:`deterministic_cpu`); the model is left in eval mode.  :class:`TrainError` where
    the task or the dataset format cannot train, or the loss is not finite.
    """
    import torch

    if task not in TRAINABLE_TASKS:
        raise TrainError(f"train applies to {' and '.join(TRAINABLE_TASKS)} fixtures; {type(model).__name__} is "
                         f"a {task} model", stage="train")
    if tokenizer is None:
        raise TrainError(f"{type(model).__name__} has no tokenizer to turn the dataset into tokens", stage="train")
    if any(p.dtype != torch.float32 for p in model.parameters() if p.is_floating_point()):
        raise TrainError("train a model in float32 (the build casts to the fixture's dtype afterwards)", stage="train")
    config = config if config is not None else model.config
    recipe = dict(recipe)
    positions = _max_positions(config)
    if positions is not None and recipe["seq_len"] > positions:
        recipe["seq_len"] = positions
    recipe["seq_len"] = _required_seq_len(config) or recipe["seq_len"]
    model.eval()  # dropout off: no random draws, nothing that depends on how a generator is consumed
    train_mode = getattr(config, "model_type", None) in TRAIN_MODE_MODEL_TYPES
    if task == "causal-lm":
        rows = token_rows(training_texts(dataset, tokenizer, fmt), tokenizer, _eos_id(tokenizer, model))
        data: Any = _CausalBatches(model, rows, recipe["seq_len"], recipe["batch_size"], config)
        recipe["seq_len"] = data.seq_len
        tokens = sum(map(len, rows))
    else:
        data = _seq2seq_batches(dataset, tokenizer, fmt, recipe, model)
        tokens = sum(map(len, data.sources)) + sum(map(len, data.targets))
    steps, losses = int(recipe["steps"]), []
    params = [p for p in model.parameters() if p.requires_grad]
    with deterministic_cpu(seed) as generator:
        model.train(train_mode)
        optimizer = torch.optim.AdamW(params, lr=recipe["lr"], weight_decay=0.0, foreach=False)
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = recipe["lr"] * _lr_factor(step, steps)
            loss = model(**data.batch(generator)).loss
            if loss is None or not bool(torch.isfinite(loss)):
                raise TrainError(f"step {step}: the loss is {None if loss is None else float(loss)} (lower train.lr)",
                                 stage="train")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP_NORM, foreach=False)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        model.eval()
        final, vocab = _final_loss(model, data)
    for p in params:
        p.grad = None
    picks = sorted({round(i * (steps - 1) / (CURVE_POINTS - 1)) for i in range(CURVE_POINTS)})
    target = loss_target(vocab)
    return {
        **recipe,
        "task": task,
        "dataset_format": fmt,
        "rows": len(dataset),
        "tokens": tokens,
        "threads": TRAIN_THREADS,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the bytes depend on it (RESULTS.md)
        "mode": "train" if train_mode else "eval",
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
        "curve": [[i + 1, round(losses[i], 4)] for i in picks],
        "final_loss": round(final, 4),
        "vocab_size": vocab,
        "loss_target": round(target, 4),
        "reached_target": final <= target,
    }


def _final_loss(model: Any, data: Any) -> tuple[float, int]:
    """(mean loss over the training data once, weighted by tokens; the output vocabulary size)."""
    import torch

    total, count, vocab = 0.0, 0, 0
    with torch.no_grad():
        for inputs, n in data.all_batches():
            out = model(**inputs)
            total += float(out.loss) * n
            count += n
            logits = getattr(out, "logits", None)
            vocab = int(logits.shape[-1]) if logits is not None else int(getattr(model.config, "vocab_size", 0))
    return total / count, vocab


def train_entry(model: Any, tokenizer: Any, spec: "FixtureSpec", arch: "ArchInfo", config: Any = None) -> dict[str, Any]:
    """Train a built entry's model as ``spec.train`` says, on the dataset the entry gets (the same rows the
    dataset stage saves: the manifest's ``dataset`` table and ``seed``); returns the recipe section."""
    from .datasets import build_dataset, default_format

    assert spec.train is not None
    fmt = spec.dataset.get("format") or default_format(arch.task, arch.modality)
    dataset = build_dataset(fmt, spec.dataset, seed=spec.seed)
    return train_model(model, tokenizer, dataset, task=arch.task, fmt=fmt, recipe=spec.train, seed=spec.seed,
                       config=config)


# --------------------------------------------------------------------------------------- measuring


#: Words as :func:`continuation_stats` counts them (letters, inner apostrophes: "don't").
_WORD = r"[A-Za-z]+(?:'[A-Za-z]+)*"


def corpus_words() -> frozenset[str]:
    """The words of the shipped corpus, lower-cased."""
    import re

    from .corpus import corpus_text

    return frozenset(w.lower() for w in re.findall(_WORD, corpus_text()))


def continuation_stats(model: Any, tokenizer: Any, texts: Sequence[str], *, prompt_words: int = 3,
                       max_new_tokens: int = 64, examples: int = 3) -> dict[str, Any]:
    """Greedy ``generate`` from each text: a causal LM from its first ``prompt_words`` words (as
    ``tokenizer(prompt)`` tokenizes them), a seq2seq LM from the whole text.  Returns how many continuations
    stopped at an id ``generate`` stops at within ``max_new_tokens`` (``eos``), how many generated words
    (:func:`corpus_words`; a prompt's last word that the continuation extends counts as generated) occur in
    the corpus (``corpus_words`` of ``words``, ``word_share``), and the first ``examples`` continuations."""
    import re

    import torch

    vocabulary, stops = corpus_words(), set(stop_ids(model))
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    eos = good = total = 0
    shown: list[list[str]] = []
    for text in texts:
        prompt = text if seq2seq else " ".join(text.split()[:prompt_words])
        enc = tokenizer(prompt, return_tensors="pt")
        ids = enc["input_ids"]
        if not seq2seq and ids.shape[1] > 1 and int(ids[0, -1]) in stops | {tokenizer.eos_token_id}:
            enc = {k: v[:, :-1] for k, v in enc.items()}  # a tokenizer that ends every text with EOS
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[0, 1:] if seq2seq else out[0, enc["input_ids"].shape[1]:]
        new = new.tolist()
        end = next((i for i, t in enumerate(new) if t in stops), None)
        eos += end is not None
        new = new[:end]
        if seq2seq:
            generated = re.findall(_WORD, tokenizer.decode(new, skip_special_tokens=True))
        else:
            head = re.findall(_WORD, tokenizer.decode(enc["input_ids"][0].tolist(), skip_special_tokens=True))
            full = re.findall(_WORD, tokenizer.decode(enc["input_ids"][0].tolist() + new, skip_special_tokens=True))
            keep = len(head) - (1 if head and len(full) >= len(head) and full[len(head) - 1] != head[-1] else 0)
            generated = full[keep:]
        good += sum(w.lower() in vocabulary for w in generated)
        total += len(generated)
        if len(shown) < examples:
            shown.append([prompt, tokenizer.decode(new, skip_special_tokens=True)])
    return {"prompts": len(texts), "eos": eos, "words": total, "corpus_words": good,
            "word_share": round(good / total, 4) if total else None, "examples": shown}
