"""Dataset rows -> a collated batch for the fixture's task: what a ``Trainer`` would feed the model.

:func:`task_batch` (``TinyTriple.batch(n)``) takes the first ``n`` rows of the fixture's dataset,
processes them with the fixture's own tokenizer / processor and collates them with the task's standard
collator (``DataCollatorForLanguageModeling`` for language models, ``DataCollatorWithPadding`` for
classification, ``DataCollatorForTokenClassification``, ``DataCollatorForSeq2Seq``...).

Which dataset columns a task reads is data: a column *role* (``text``, ``label``, ``tokens``, ``tags``,
``question``, ``context``, ``answers``, ``source``, ``target``, ``image``, ``audio``, ``messages``...) is the
column the dataset's own format names for it (:data:`pytest_tinymodels.build.datasets.FORMAT_COLUMNS`), else
the first of :data:`COLUMNS` the dataset has; :data:`TASK_BATCHES` maps a task to its batcher.  A task-shaped
column is used when present; a dataset with only ``text`` gives the inputs without labels (for language
models the text *is* the label).  Language models also read chat ``messages`` (through the tokenizer's chat
template) and ``prompt`` + ``completion``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import TinyModelsError

if TYPE_CHECKING:
    from .loader import TinyTriple

__all__ = ["task_batch", "text_tokenizer", "COLUMNS", "TASK_BATCHES", "BatchError"]


class BatchError(TinyModelsError):
    """The fixture's dataset or processor cannot make a batch for its task."""


#: column role -> candidate column names, in order of preference.
COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text", "content", "sentence"),
    "label": ("label", "labels"),
    "tokens": ("tokens", "words"),
    "tags": ("ner_tags", "tags", "pos_tags"),
    "question": ("question",),
    "context": ("context",),
    "answers": ("answers",),
    "source": ("source", "src", "document", "article", "input", "text"),
    "target": ("target", "tgt", "summary", "output", "text"),
    "translation": ("translation",),
    "image": ("image", "img", "pixel_values"),
    "audio": ("audio",),
    "transcript": ("text", "sentence", "transcription", "transcript"),
    "messages": ("messages",),
    "prompt": ("prompt",),
    "completion": ("completion",),
}

#: our role -> the role name of :data:`~pytest_tinymodels.build.datasets.FORMAT_COLUMNS`, where they differ.
_FORMAT_ROLE = {"transcript": "text"}


def text_tokenizer(processor: Any) -> Any:
    """The text tokenizer of a processor: the processor itself when it is a tokenizer, its ``tokenizer``
    when it holds one, else None."""
    from transformers import PreTrainedTokenizerBase

    if processor is None or isinstance(processor, PreTrainedTokenizerBase):
        return processor
    inner = getattr(processor, "tokenizer", None)
    return inner if isinstance(inner, PreTrainedTokenizerBase) else None


def _saved_tokenizer(repo: Any) -> Any:
    """The tokenizer saved in the fixture's repo beside a feature extractor (CTC / speech fixtures: the labels'
    tokenizer), or None."""
    from pathlib import Path

    if repo is None or not any((Path(repo) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)
    except Exception:  # noqa: BLE001 - no usable tokenizer: batches without text labels
        return None


class _Rows:
    """The first ``n`` rows of a dataset, by column role, with the fixture's processing tools."""

    def __init__(self, triple: TinyTriple, n: int, max_length: int) -> None:
        dataset = triple.dataset
        if dataset is None or len(dataset) == 0:
            raise BatchError(f"fixture {triple.name!r} has no dataset rows")
        self.triple = triple
        self.model = triple.model
        self.processor = triple.processor
        self.tokenizer = (text_tokenizer(triple.processor) or text_tokenizer(triple.tokenizer)
                          or _saved_tokenizer(triple.path))
        self.n = min(n, len(dataset))
        self.columns = list(dataset.column_names)
        from .build.datasets import FORMAT_COLUMNS, format_of

        self.roles = FORMAT_COLUMNS.get(format_of(dataset) or "", {})
        self.rows: dict[str, list[Any]] = dataset[: self.n]  # decoded (images as PIL, audio as arrays)
        limit = getattr(self.tokenizer, "model_max_length", None) if self.tokenizer is not None else None
        self.max_length = min(max_length, limit) if isinstance(limit, int) and limit > 0 else max_length
        self.seed = int((triple.recipe.get("spec") or {}).get("seed", 0) or 0)
        self._fixed: int | None | bool = False  # not looked up yet

    def fixed_length(self) -> int | None:
        """The one text length the model takes (Reformer in training, Perceiver's masked LM), or None."""
        if self._fixed is False:
            from .build.inputs import DEFAULT_SEQ_LEN, default_text_length

            length = default_text_length(self.model, self.processor, task=self.triple.task)
            self._fixed = length if length != DEFAULT_SEQ_LEN else None
        return self._fixed  # type: ignore[return-value]

    def column(self, role: str) -> str | None:
        """The dataset's column for ``role``: the one its format names, else the first of :data:`COLUMNS`; or None."""
        named = self.roles.get(_FORMAT_ROLE.get(role, role))
        if named in self.columns:
            return named
        return next((c for c in COLUMNS[role] if c in self.columns), None)

    def values(self, role: str) -> list[Any] | None:
        name = self.column(role)
        return None if name is None else self.rows[name]

    def need_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise BatchError(f"fixture {self.triple.name!r} ({type(self.model).__name__}) has no text tokenizer: "
                             "use .inputs() for inputs built from the config")
        if self.tokenizer.pad_token is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token  # the usual choice for decoder-only tokenizers
        return self.tokenizer

    def need(self, role: str) -> list[Any]:
        values = self.values(role)
        if values is None:
            raise BatchError(f"fixture {self.triple.name!r}: its dataset has no {role} column "
                             f"(looked for {', '.join(COLUMNS[role])}; it has {', '.join(self.columns)})")
        return values

    def tokenize(self, texts: Sequence[str], **kwargs: Any) -> list[dict[str, Any]]:
        """One feature dict per text (not padded: the collator pads; padded to the model's one text length
        where it has one)."""
        tok = self.need_tokenizer()
        fixed = self.fixed_length()
        if fixed is not None:
            kwargs = {"padding": "max_length", **kwargs}
        enc = tok(list(texts), truncation=True, max_length=fixed or self.max_length, **kwargs)
        return [{k: enc[k][i] for k in enc.keys()} for i in range(len(texts))]

    def feature_extractor(self) -> Any:
        proc = self.processor
        return getattr(proc, "feature_extractor", None) or proc

    def image_processor(self) -> Any:
        proc = self.processor
        return getattr(proc, "image_processor", None) or proc


# --------------------------------------------------------------------------- per task


def _language_modeling(mlm: bool) -> Callable[[_Rows], dict[str, Any]]:
    def batch(r: _Rows) -> dict[str, Any]:
        from transformers import DataCollatorForLanguageModeling

        tok = r.need_tokenizer()
        features = r.tokenize(_lm_texts(r))
        if mlm and tok.mask_token is None:
            raise BatchError(f"fixture {r.triple.name!r}: masked language modeling needs a mask token, and the "
                             "tokenizer has none")
        collator = DataCollatorForLanguageModeling(tok, mlm=mlm, seed=r.seed, return_tensors="pt")
        return dict(collator(features))

    batch.__doc__ = ("masked" if mlm else "causal") + " language modeling: text -> ids; the collator makes labels"
    return batch


def _lm_texts(r: _Rows) -> list[str]:
    """What a language model reads of each row: ``text``; else chat ``messages`` through the tokenizer's chat
    template; else ``prompt`` + ``completion`` (strings)."""
    texts = r.values("text")
    if texts is not None:
        return list(texts)
    messages = r.values("messages")
    if messages is not None:
        tok = r.need_tokenizer()
        if getattr(tok, "chat_template", None) is None:
            raise BatchError(f"fixture {r.triple.name!r}: its dataset holds chat messages and its tokenizer has no "
                             "chat template")
        return [tok.apply_chat_template(m, tokenize=False) for m in messages]
    prompts, completions = r.values("prompt"), r.values("completion")
    if prompts is not None and all(isinstance(p, str) for p in prompts):
        return [p + (c if isinstance(c, str) else "") for p, c in zip(prompts, completions or [""] * len(prompts))]
    return list(r.need("text"))


def _classification(r: _Rows) -> dict[str, Any]:
    """text (+ label) -> ids padded by ``DataCollatorWithPadding``."""
    from transformers import DataCollatorWithPadding

    features = r.tokenize(r.need("text"))
    labels = r.values("label")
    if labels is not None:
        for f, label in zip(features, labels):
            f["labels"] = label
    return dict(DataCollatorWithPadding(r.need_tokenizer(), return_tensors="pt")(features))


def _token_classification(r: _Rows) -> dict[str, Any]:
    """tokens + ner_tags -> ids with one tag per word's first sub-token (-100 elsewhere), collated by
    ``DataCollatorForTokenClassification``; text only -> ids without labels."""
    from transformers import DataCollatorForTokenClassification

    tok = r.need_tokenizer()
    words, tags = r.values("tokens"), r.values("tags")
    if words is None:
        features = r.tokenize(r.need("text"))
    else:
        enc = tok(words, is_split_into_words=True, truncation=True, max_length=r.max_length)
        features = []
        for i in range(len(words)):
            f = {k: enc[k][i] for k in enc.keys()}
            if tags is not None:
                previous, aligned = None, []
                for word in enc.word_ids(i):
                    aligned.append(-100 if word is None or word == previous else int(tags[i][word]))
                    previous = word
                f["labels"] = aligned
            features.append(f)
    return dict(DataCollatorForTokenClassification(tok, return_tensors="pt")(features))


def _question_answering(r: _Rows) -> dict[str, Any]:
    """question + context + answers (SQuAD layout) -> ids with the answer's token span
    (``start_positions``/``end_positions``; 0/0 where it was truncated away); text only -> ids."""
    from transformers import DataCollatorWithPadding

    tok = r.need_tokenizer()
    questions, contexts, answers = r.values("question"), r.values("context"), r.values("answers")
    if questions is None or contexts is None:
        return _classification(r)
    enc = tok(questions, contexts, truncation="only_second", max_length=r.max_length,
              return_offsets_mapping=answers is not None)
    features = []
    for i in range(len(questions)):
        f = {k: enc[k][i] for k in enc.keys() if k != "offset_mapping"}
        if answers is not None:
            f["start_positions"], f["end_positions"] = _answer_span(enc, i, answers[i])
        features.append(f)
    return dict(DataCollatorWithPadding(tok, return_tensors="pt")(features))


def _answer_span(enc: Any, i: int, answer: Mapping[str, Any]) -> tuple[int, int]:
    """Token indices of the first answer's characters inside the context (0, 0 when not in the window)."""
    starts, texts = list(answer.get("answer_start") or []), list(answer.get("text") or [])
    if not starts or not texts:
        return 0, 0
    first, last = int(starts[0]), int(starts[0]) + len(texts[0])
    sequence_ids = enc.sequence_ids(i)
    start = end = None
    for token, ((a, b), seq) in enumerate(zip(enc["offset_mapping"][i], sequence_ids)):
        if seq != 1:
            continue
        if start is None and a <= first < b:
            start = token
        if a < last <= b:
            end = token
    if start is None or end is None or end < start:
        return 0, 0
    return start, end


def _seq2seq(r: _Rows) -> dict[str, Any]:
    """source + target (or a ``translation`` dict, or text as both) -> ids and labels collated by
    ``DataCollatorForSeq2Seq`` (which makes ``decoder_input_ids`` with the model)."""
    from transformers import DataCollatorForSeq2Seq

    tok = r.need_tokenizer()
    pairs = r.values("translation")
    if pairs is not None:
        langs = list(pairs[0])
        sources, targets = [p[langs[0]] for p in pairs], [p[langs[-1]] for p in pairs]
    else:
        sources, targets = r.need("source"), r.need("target")
    enc = tok(list(sources), text_target=list(targets), truncation=True, max_length=r.max_length)
    features = [{k: enc[k][i] for k in enc.keys()} for i in range(len(sources))]
    return dict(DataCollatorForSeq2Seq(tok, model=r.model, return_tensors="pt")(features))


def _images(r: _Rows) -> dict[str, Any]:
    """image (+ label) -> ``pixel_values`` through the image processor (+ ``labels``)."""
    import torch

    images = [image.convert("RGB") if hasattr(image, "convert") else image for image in r.need("image")]
    batch = dict(r.image_processor()(images=images, return_tensors="pt"))
    labels = r.values("label")
    if labels is not None:
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch


def _waves(r: _Rows) -> tuple[list[Any], int]:
    import numpy as np

    audio = r.need("audio")
    waves = [np.asarray(a["array"], dtype=np.float32) for a in audio]
    fe = r.feature_extractor()
    rate = int(getattr(fe, "sampling_rate", None) or audio[0].get("sampling_rate") or 16000)
    return waves, rate


def _audio_features(r: _Rows) -> dict[str, Any]:
    """The feature extractor's output for the audio rows, with its attention / padding mask where it makes one
    (CTC losses read the input lengths from it)."""
    waves, rate = _waves(r)
    fe = r.feature_extractor()
    try:
        return dict(fe(waves, sampling_rate=rate, return_tensors="pt", return_attention_mask=True))
    except TypeError:  # an extractor without that option
        return dict(fe(waves, sampling_rate=rate, return_tensors="pt"))


def _audio_classification(r: _Rows) -> dict[str, Any]:
    """audio (+ label) -> features through the feature extractor (+ ``labels``)."""
    import torch

    batch = _audio_features(r)
    labels = r.values("label")
    if labels is not None:
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch


def _transcripts(r: _Rows) -> Any:
    """The transcripts as label ids, padding -100 (None without a transcript column)."""
    texts = r.values("transcript")
    if texts is None or r.tokenizer is None:
        return None
    enc = r.need_tokenizer()(list(texts), padding=True, truncation=True, max_length=r.max_length,
                             return_tensors="pt")
    return enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)


def _speech_seq2seq(r: _Rows) -> dict[str, Any]:
    """audio + text -> features and label ids (the model makes ``decoder_input_ids`` from the labels);
    without a transcript, ``decoder_input_ids`` of the decoder start token."""
    import torch

    batch = _audio_features(r)
    labels = _transcripts(r)
    if labels is not None:
        batch["labels"] = labels
    else:
        config = r.model.config
        start = getattr(config, "decoder_start_token_id", None)
        start = start if isinstance(start, int) else int(getattr(config, "bos_token_id", 0) or 0)
        batch["decoder_input_ids"] = torch.full((r.n, 1), start, dtype=torch.long)
    return batch


def _ctc(r: _Rows) -> dict[str, Any]:
    """audio + text -> waveform features and transcript ids (padding -100), as a CTC fine-tuning collator pads."""
    batch = _audio_features(r)
    labels = _transcripts(r)
    if labels is not None:
        batch["labels"] = labels
    return batch


#: task -> batcher.  Other tasks: by the dataset's columns (:func:`_by_columns`).
TASK_BATCHES: dict[str, Callable[[_Rows], dict[str, Any]]] = {
    "causal-lm": _language_modeling(mlm=False),
    "masked-lm": _language_modeling(mlm=True),
    "seq2seq-lm": _seq2seq,
    "sequence-classification": _classification,
    "token-classification": _token_classification,
    "question-answering": _question_answering,
    "image-classification": _images,
    "video-classification": _images,
    "audio-classification": _audio_classification,
    "speech-seq2seq": _speech_seq2seq,
    "ctc": _ctc,
}


def _by_columns(r: _Rows) -> dict[str, Any]:
    """Tasks without a batcher of their own: images, audio or text, whichever the dataset has."""
    if r.column("image") is not None:
        return _images(r)
    if r.column("audio") is not None:
        return _audio_classification(r)
    return _classification(r)


def task_batch(triple: TinyTriple, n: int = 2, *, max_length: int = 32) -> dict[str, Any]:
    """The first ``n`` rows of ``triple.dataset`` processed and collated for ``triple.task`` (see the
    module docstring), on the model's device, floating tensors in the model's dtype.

    Text is truncated to ``max_length`` tokens (and the tokenizer's ``model_max_length``).  A decoder-only
    tokenizer without a pad token gets its eos token as pad token (the usual choice).  Raises
    :class:`BatchError` when the dataset lacks the columns the task needs or there is no tokenizer for text.
    """
    from ._quiet import quiet_libraries

    rows = _Rows(triple, n, max_length)
    with quiet_libraries():
        batch = TASK_BATCHES.get(triple.task or "", _by_columns)(rows)
    return _placed(_completed(batch, triple), triple.model)


#: inputs a batch makes from the text itself (never taken from :func:`model_inputs`).
_FROM_TEXT = frozenset({"input_ids", "attention_mask", "token_type_ids", "position_ids", "decoder_input_ids",
                        "decoder_attention_mask", "labels", "start_positions", "end_positions", "special_tokens_mask"})


def _completed(batch: dict[str, Any], triple: TinyTriple) -> dict[str, Any]:
    """A text batch plus what the model needs beyond the text (GIT's ``pixel_values``, Moshi's audio codes),
    built by :func:`~pytest_tinymodels.build.inputs.model_inputs` for the same batch size and length.
    :class:`BatchError` where the model's ``input_ids`` are not text token ids (MusicGen's codebooks) or it
    reads no token ids at all (draft models fed hidden states)."""
    from .build.inputs import model_inputs

    ids = batch.get("input_ids")
    if ids is None or ids.ndim != 2:
        return batch
    wanted = model_inputs(triple.model, triple.processor, task=triple.task, batch_size=int(ids.shape[0]),
                          seq_len=int(ids.shape[1]), device="cpu")
    name = type(triple.model).__name__
    if "input_ids" not in wanted and "inputs" in wanted and not wanted["inputs"].is_floating_point():
        batch["inputs"] = batch.pop("input_ids")  # Perceiver: token ids under the generic name ``inputs``
        return batch
    if "input_ids" not in wanted:
        raise BatchError(f"{name} reads no token ids (its inputs: {', '.join(sorted(wanted))}): use .inputs()")
    if tuple(wanted["input_ids"].shape) != tuple(ids.shape):
        raise BatchError(f"{name} reads input_ids of shape {tuple(wanted['input_ids'].shape)} for a batch of "
                         f"{tuple(ids.shape)} text tokens (not text token ids: e.g. audio codebooks): use .inputs()")
    for key, value in wanted.items():
        if key not in batch and key not in _FROM_TEXT:
            batch[key] = value
    return batch


def _placed(batch: dict[str, Any], model: Any) -> dict[str, Any]:
    """Tensors on the model's device; floating ones in the model's floating dtype."""
    import torch

    device, dtype = getattr(model, "device", "cpu"), getattr(model, "dtype", None)
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, dtype) if v.is_floating_point() and isinstance(dtype, torch.dtype) and dtype.is_floating_point else v.to(device)
        out[k] = v
    return out
