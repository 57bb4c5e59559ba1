"""Tiny task-shaped datasets: text drawn deterministically from the shipped corpus, images and audio
synthesised, in the shape a task's training code expects (``ClassLabel`` / ``Sequence`` features).

A *format* names a dataset shape (:data:`DATASET_FORMATS`: name -> builder). A fixture's dataset has the
format of its task (:func:`default_format`) unless its manifest sets ``dataset = { format = "..." }``.
Labels follow simple rules a model can learn (a text's length bucket, capitalised words, the word after
a quoted phrase, the true continuation of a passage), so a few training steps are meaningful:

* ``text`` / ``language_modeling``: ``text``;
* ``classification``: ``text`` + ``label`` (``ClassLabel``): the bucket of the text's length, in
  ``num_labels`` equal slices of ``min_chars..max_chars``;
* ``token_classification``: ``tokens`` + ``ner_tags`` (``Sequence(ClassLabel)``): capitalised words as
  ``B-CAP``/``I-CAP`` spans, the rest ``O`` (``PUNCT``, ``NUM`` with 4, 5 labels);
* ``question_answering`` (SQuAD layout): ``id``, ``question``, ``context``, ``answers`` ``{"text": [...],
  "answer_start": [...]}``: which word follows a phrase quoted from the context;
* ``seq2seq``: ``text`` (the source) + ``target``: the source's lead sentence (a lead-1 summary);
* ``image_classification``: ``image`` + ``label``: the image's hue; ``audio_classification``: ``audio`` +
  ``label``: the pitch of a tone; ``asr``: ``audio`` + ``text``: a tune of notes and their names;
* ``chat`` and TRL's post-training types, standard and conversational: prompt-only, prompt-completion,
  preference (explicit and implicit prompt), unpaired preference, stepwise supervision, tool calling.

The same format, params and seed give the same rows, features and ``save_to_disk`` bytes.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Sequence

from ..errors import ManifestError
from .corpus import clip, sample_texts, sentences, snippet

if TYPE_CHECKING:
    from datasets import Dataset, Features

#: Parameters of every format (the manifest's ``dataset`` table sets ``rows``, ``seed``, ``min_chars``,
#: ``max_chars`` and ``format``); images and audio use the media ones.
FORMAT_DEFAULTS: dict[str, Any] = {"rows": 32, "min_chars": 40, "max_chars": 200,
                                   "image_size": 32, "sampling_rate": 16000, "samples": 8000}
#: Labels of a format when neither the caller nor the model's config gives them.
DEFAULT_NUM_LABELS = 2
#: Words and punctuation marks, as the token-classification rows split a text.
TOKEN_PATTERN = re.compile(r"\w+(?:['-]\w+)*|[^\w\s]")
#: Words (no punctuation), as question answering and tool calls count them.
WORD_PATTERN = re.compile(r"\w+(?:['-]\w+)*")
#: transformers' placeholder label names (``LABEL_0``...): a config that has only these names none.
_PLACEHOLDER_LABEL = re.compile(r"LABEL_\d+")


class FormatContext(NamedTuple):
    """What a format builder reads: the row count, the seed, the text bounds, the label names and the
    media sizes (see :data:`FORMAT_DEFAULTS`)."""

    rows: int
    seed: int
    min_chars: int
    max_chars: int
    label_names: tuple[str, ...] | None  # None: the format's own names for ``num_labels``
    num_labels: int
    image_size: int
    sampling_rate: int
    samples: int

    def rng(self) -> random.Random:
        return random.Random(self.seed)

    def labels(self, default_names: Callable[[int], Sequence[str]]) -> list[str]:
        """The label names: the caller's (from the model config), else the format's own."""
        return list(self.label_names) if self.label_names else list(default_names(self.num_labels))


#: A builder returns the columns (name -> one value per row) and their ``datasets.Features``.
Builder = Callable[[FormatContext], "tuple[dict[str, list[Any]], Features]"]


# ----------------------------------------------------------------------------------------- helpers


def _balanced(rng: random.Random, rows: int, n: int) -> list[int]:
    """``rows`` labels, each of ``0..n-1`` equally often (the remainder spread), in a shuffled order."""
    order = [i % n for i in range(rows)]
    rng.shuffle(order)
    return order


def _split_words(text: str) -> tuple[str, str]:
    """``text`` cut at the word boundary nearest its middle: (head, rest without its leading space)."""
    spaces = [m.start() for m in re.finditer(" ", text)]
    if not spaces:
        return text, ""
    cut = min(spaces, key=lambda i: (abs(i - len(text) // 2), i))
    return text[:cut], text[cut + 1:]


#: Draws a row may take before its format gives up (only text bounds far too small for it run out).
MAX_DRAWS = 1000


def _draw(rng: random.Random, ctx: FormatContext, make: Callable[[str], Any], what: str) -> Any:
    """The first non-None ``make(snippet)`` over snippets drawn with ``rng``."""
    for _ in range(MAX_DRAWS):
        found = make(snippet(rng, ctx.min_chars, ctx.max_chars))
        if found is not None:
            return found
    raise ManifestError(f"no corpus snippet of {ctx.min_chars}..{ctx.max_chars} characters gives {what}",
                        field="dataset.max_chars", hint="raise max_chars (the default is 200)")


def _passage(rng: random.Random, ctx: FormatContext) -> tuple[str, str]:
    """A snippet split into a prompt and its true continuation, both non-empty."""
    return _draw(rng, ctx, lambda text: (lambda h, r: (h, r) if h and r else None)(*_split_words(text)),
                 "a prompt and a continuation (two words or more)")


def _other_continuation(rng: random.Random, ctx: FormatContext, true_rest: str) -> str:
    """The continuation of another passage (a rejected / unpreferred completion), never the true one."""
    for _ in range(MAX_DRAWS):
        _, rest = _passage(rng, ctx)
        if rest != true_rest:
            return rest
    raise ManifestError("no other continuation found", field="dataset.max_chars", hint="raise max_chars")


def _sentence(index: int, max_chars: int) -> str:
    pool = sentences()
    return clip(pool[index % len(pool)], max_chars)


def _message_features() -> Any:
    from datasets import Value

    return [{"role": Value("string"), "content": Value("string")}]  # a list of structs, in every datasets version


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


#: How a conversational prompt asks for the continuation of a passage.
CONTINUE = "Continue the story: {}"


# ----------------------------------------------------------------------------------- task formats


def _text(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    texts = sample_texts(ctx.rows, seed=ctx.seed, min_chars=ctx.min_chars, max_chars=ctx.max_chars)
    return {"text": texts}, Features({"text": Value("string")})


def length_label(length: int, min_chars: int, max_chars: int, num_labels: int) -> int:
    """The ``classification`` rule: which of ``num_labels`` equal slices of ``min_chars..max_chars`` holds
    ``length``."""
    clamped = min(max(length, min_chars), max_chars)
    return min(num_labels - 1, (clamped - min_chars) * num_labels // (max_chars - min_chars + 1))


def _length_names(n: int) -> list[str]:
    return ["short", "long"] if n == 2 else [f"length_{k}" for k in range(n)]


def _classification(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import ClassLabel, Features, Value

    n, lo, hi = ctx.num_labels, ctx.min_chars, ctx.max_chars
    if hi - lo + 1 < n:
        raise ManifestError(f"{n} length classes do not fit in min_chars..max_chars ({lo}..{hi})",
                            field="dataset.max_chars", hint=f"make max_chars - min_chars at least {n - 1}")
    # the lengths of class k: from the smallest length of class k to the smallest of class k + 1, less one
    starts = [lo] * n
    for length in range(hi, lo - 1, -1):
        starts[length_label(length, lo, hi, n)] = length
    bounds = [(starts[k], starts[k + 1] - 1 if k + 1 < n else hi) for k in range(n)]
    rng = ctx.rng()
    texts, labels = [], []
    for label in _balanced(rng, ctx.rows, n):
        text = snippet(rng, *bounds[label])
        texts.append(text)
        labels.append(length_label(len(text), lo, hi, n))
    features = Features({"text": Value("string"), "label": ClassLabel(names=ctx.labels(_length_names))})
    return {"text": texts, "label": labels}, features


#: Tag names of ``token_classification`` by rule, in id order (2 labels: ``O``/``CAP``).
TAG_NAMES = ("O", "B-CAP", "I-CAP", "PUNCT", "NUM")


def _tag_names(n: int) -> list[str]:
    if n == 2:
        return ["O", "CAP"]
    return list(TAG_NAMES[:n]) + [f"TAG_{k}" for k in range(len(TAG_NAMES), n)]


def token_tags(tokens: Sequence[str], num_labels: int) -> list[int]:
    """The ``token_classification`` rule: capitalised words are ``B-CAP`` (first of a run) / ``I-CAP``,
    punctuation ``PUNCT`` and numbers ``NUM`` where there are 4 / 5 labels, everything else ``O``.
    With 2 labels, capitalised words are 1; with 1 label, all 0."""
    tags, previous_cap = [], False
    for token in tokens:
        cap = token[0].isupper()
        if cap:
            tag = 1 if num_labels == 2 or not previous_cap else 2
        elif not token[0].isalnum() and num_labels >= 4:
            tag = 3
        elif token[0].isdigit() and num_labels >= 5:
            tag = 4
        else:
            tag = 0
        tags.append(tag if tag < num_labels else 0)
        previous_cap = cap
    return tags


def _token_classification(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import ClassLabel, Features, Sequence as SequenceFeature, Value

    texts = sample_texts(ctx.rows, seed=ctx.seed, min_chars=ctx.min_chars, max_chars=ctx.max_chars)
    tokens = [TOKEN_PATTERN.findall(text) for text in texts]
    features = Features({"tokens": SequenceFeature(Value("string")),
                         "ner_tags": SequenceFeature(ClassLabel(names=ctx.labels(_tag_names)))})
    return {"tokens": tokens, "ner_tags": [token_tags(t, ctx.num_labels) for t in tokens]}, features


#: The ``question_answering`` question: the answer is the word after the quoted phrase.
QUESTION = 'Which word comes after "{}"?'


def _qa_row(rng: random.Random, ctx: FormatContext) -> tuple[str, str, str, int]:
    """(context, question, answer, answer_start): two words quoted from the context (side by side, found
    there once), and the word that follows them."""

    def make(context: str) -> tuple[str, str, str, int] | None:
        words = list(WORD_PATTERN.finditer(context))
        candidates = []
        for j in range(2, len(words)):
            phrase = context[words[j - 2].start():words[j - 1].end()]
            if words[j - 1].start() - words[j - 2].end() == 1 and " " in phrase and context.count(phrase) == 1:
                candidates.append((phrase, words[j]))
        if not candidates:
            return None
        phrase, answer = rng.choice(candidates)
        return context, QUESTION.format(phrase), answer.group(), answer.start()

    return _draw(rng, ctx, make, "a context of three words or more")


def _question_answering(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Sequence as SequenceFeature, Value

    rng = ctx.rng()
    columns: dict[str, list[Any]] = {"id": [], "question": [], "context": [], "answers": []}
    for i in range(ctx.rows):
        context, question, answer, start = _qa_row(rng, ctx)
        columns["id"].append(f"{ctx.seed}-{i}")
        columns["question"].append(question)
        columns["context"].append(context)
        columns["answers"].append({"text": [answer], "answer_start": [start]})
    features = Features({
        "id": Value("string"), "question": Value("string"), "context": Value("string"),
        "answers": SequenceFeature({"text": Value("string"), "answer_start": Value("int32")}),  # SQuAD's layout
    })
    return columns, features


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def lead_summary(text: str) -> str:
    """The ``seq2seq`` rule: the text's first sentence; the first half of its words where it has one."""
    lead = _SENTENCE_END.split(text, maxsplit=1)[0]
    return lead if lead != text else _split_words(text)[0]


def _seq2seq(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    texts = sample_texts(ctx.rows, seed=ctx.seed, min_chars=ctx.min_chars, max_chars=ctx.max_chars)
    return ({"text": texts, "target": [lead_summary(t) for t in texts]},
            Features({"text": Value("string"), "target": Value("string")}))


# ------------------------------------------------------------------------------------------- media


def _hue_names(n: int) -> list[str]:
    return [f"hue_{round(360 * k / n)}" for k in range(n)]


def _image_classification(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    import colorsys

    import numpy as np
    from datasets import ClassLabel, Features, Image

    from PIL import Image as PILImage

    rng = np.random.default_rng(ctx.seed)
    labels = _balanced(ctx.rng(), ctx.rows, ctx.num_labels)
    size, images = ctx.image_size, []
    for label in labels:  # label k: the hue k/n, with noise
        base = np.array(colorsys.hsv_to_rgb(label / ctx.num_labels, 0.8, 0.9), dtype=np.float32) * 255
        pixels = base + rng.normal(0.0, 24.0, (size, size, 3))
        images.append(PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"))
    features = Features({"image": Image(), "label": ClassLabel(names=ctx.labels(_hue_names))})
    return {"image": images, "label": labels}, features


#: ``asr``: the notes of a tune and their frequencies (C major, from middle C).
NOTES: dict[str, float] = {"do": 261.63, "re": 293.66, "mi": 329.63, "fa": 349.23, "sol": 392.0,
                           "la": 440.0, "si": 493.88}


def _tone_frequency(label: int, n: int) -> float:
    """``audio_classification``: label k of n sounds at 220 Hz * 4^(k/n) (two octaves split evenly)."""
    return 220.0 * 4.0 ** (label / n)


def _tone_names(n: int) -> list[str]:
    return [f"tone_{round(_tone_frequency(k, n))}hz" for k in range(n)]


def _audio_features() -> Any:
    from datasets import Sequence as SequenceFeature, Value

    # the decoded-``Audio`` layout ({"array", "sampling_rate"}) without needing an audio codec library
    return {"array": SequenceFeature(Value("float32")), "sampling_rate": Value("int32")}


def _tone(rng: Any, frequency: float, length: int, rate: int) -> Any:
    import numpy as np

    t = np.arange(length, dtype=np.float64) / rate
    fade = np.minimum(1.0, np.minimum(np.arange(length), np.arange(length)[::-1]) / max(1, rate // 200))
    wave = 0.5 * np.sin(2 * np.pi * frequency * t) * fade + 0.02 * rng.standard_normal(length)
    return wave.astype(np.float32)


def _audio_classification(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    import numpy as np
    from datasets import ClassLabel, Features

    rng = np.random.default_rng(ctx.seed)
    labels = _balanced(ctx.rng(), ctx.rows, ctx.num_labels)
    audio = [{"array": _tone(rng, _tone_frequency(k, ctx.num_labels) * float(rng.uniform(0.99, 1.01)),
                             ctx.samples, ctx.sampling_rate), "sampling_rate": ctx.sampling_rate} for k in labels]
    features = Features({"audio": _audio_features(), "label": ClassLabel(names=ctx.labels(_tone_names))})
    return {"audio": audio, "label": labels}, features


def _asr(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    import numpy as np
    from datasets import Features, Value

    rng, order = np.random.default_rng(ctx.seed), ctx.rng()
    names = list(NOTES)
    audio, texts = [], []
    for _ in range(ctx.rows):  # a tune of 2..4 notes, one equal segment each; the text names them
        tune = [order.choice(names) for _ in range(order.randint(2, 4))]
        bounds = [ctx.samples * i // len(tune) for i in range(len(tune) + 1)]
        wave = np.concatenate([_tone(rng, NOTES[note], bounds[i + 1] - bounds[i], ctx.sampling_rate)
                               for i, note in enumerate(tune)])
        audio.append({"array": wave, "sampling_rate": ctx.sampling_rate})
        texts.append(" ".join(tune))
    return {"audio": audio, "text": texts}, Features({"audio": _audio_features(), "text": Value("string")})


# ----------------------------------------------------------------------- chat and TRL post-training


#: ``chat``'s system turn.
SYSTEM = "You continue passages of a novel."


def _chat(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    """Multi-turn: system, a passage to continue, its next sentence, "And then?", the one after."""
    from datasets import Features

    rng, pool = ctx.rng(), sentences()
    rows = []
    for _ in range(ctx.rows):
        i = rng.randrange(len(pool))
        rows.append([{"role": "system", "content": SYSTEM}, _user(CONTINUE.format(_sentence(i, ctx.max_chars))),
                     _assistant(_sentence(i + 1, ctx.max_chars)), _user("And then?"),
                     _assistant(_sentence(i + 2, ctx.max_chars))])
    return {"messages": rows}, Features({"messages": _message_features()})


def _conversational_language_modeling(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features

    rng = ctx.rng()
    rows = [[_user(CONTINUE.format(head)), _assistant(rest)] for head, rest in (_passage(rng, ctx) for _ in range(ctx.rows))]
    return {"messages": rows}, Features({"messages": _message_features()})


def _prompt_only(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    rng = ctx.rng()
    return {"prompt": [_passage(rng, ctx)[0] for _ in range(ctx.rows)]}, Features({"prompt": Value("string")})


def _conversational_prompt_only(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features

    rng = ctx.rng()
    prompts = [[_user(CONTINUE.format(_passage(rng, ctx)[0]))] for _ in range(ctx.rows)]
    return {"prompt": prompts}, Features({"prompt": _message_features()})


def _prompt_completion(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    rng = ctx.rng()
    pairs = [_passage(rng, ctx) for _ in range(ctx.rows)]
    return ({"prompt": [h for h, _ in pairs], "completion": [" " + r for _, r in pairs]},
            Features({"prompt": Value("string"), "completion": Value("string")}))


def _conversational_prompt_completion(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features

    rng = ctx.rng()
    pairs = [_passage(rng, ctx) for _ in range(ctx.rows)]
    return ({"prompt": [[_user(CONTINUE.format(h))] for h, _ in pairs], "completion": [[_assistant(r)] for _, r in pairs]},
            Features({"prompt": _message_features(), "completion": _message_features()}))


def _preference_rows(ctx: FormatContext) -> list[tuple[str, str, str]]:
    """(prompt, chosen: the true continuation, rejected: another passage's)."""
    rng, rows = ctx.rng(), []
    for _ in range(ctx.rows):
        head, rest = _passage(rng, ctx)
        rows.append((head, rest, _other_continuation(rng, ctx, rest)))
    return rows


def _preference(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    rows = _preference_rows(ctx)
    return ({"prompt": [p for p, _, _ in rows], "chosen": [" " + c for _, c, _ in rows],
             "rejected": [" " + r for _, _, r in rows]},
            Features({k: Value("string") for k in ("prompt", "chosen", "rejected")}))


def _implicit_preference(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    rows = _preference_rows(ctx)
    return ({"chosen": [f"{p} {c}" for p, c, _ in rows], "rejected": [f"{p} {r}" for p, _, r in rows]},
            Features({k: Value("string") for k in ("chosen", "rejected")}))


def _conversational_preference(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features

    rows = _preference_rows(ctx)
    return ({"prompt": [[_user(CONTINUE.format(p))] for p, _, _ in rows],
             "chosen": [[_assistant(c)] for _, c, _ in rows], "rejected": [[_assistant(r)] for _, _, r in rows]},
            Features({k: _message_features() for k in ("prompt", "chosen", "rejected")}))


def _conversational_implicit_preference(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features

    rows = _preference_rows(ctx)
    return ({"chosen": [[_user(CONTINUE.format(p)), _assistant(c)] for p, c, _ in rows],
             "rejected": [[_user(CONTINUE.format(p)), _assistant(r)] for p, _, r in rows]},
            Features({k: _message_features() for k in ("chosen", "rejected")}))


def _unpaired_rows(ctx: FormatContext) -> list[tuple[str, str, bool]]:
    """(prompt, completion, label): label True for the true continuation, False for another passage's;
    half of each."""
    rng, rows = ctx.rng(), []
    for good in _balanced(rng, ctx.rows, 2):
        head, rest = _passage(rng, ctx)
        rows.append((head, rest if good else _other_continuation(rng, ctx, rest), bool(good)))
    return rows


def _unpaired_preference(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    rows = _unpaired_rows(ctx)
    return ({"prompt": [p for p, _, _ in rows], "completion": [" " + c for _, c, _ in rows],
             "label": [g for _, _, g in rows]},
            Features({"prompt": Value("string"), "completion": Value("string"), "label": Value("bool")}))


def _conversational_unpaired_preference(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    from datasets import Features, Value

    rows = _unpaired_rows(ctx)
    return ({"prompt": [[_user(CONTINUE.format(p))] for p, _, _ in rows],
             "completion": [[_assistant(c)] for _, c, _ in rows], "label": [g for _, _, g in rows]},
            Features({"prompt": _message_features(), "completion": _message_features(), "label": Value("bool")}))


def _stepwise_supervision(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    """A sentence, then 2..4 steps: the true next sentences up to a point, random sentences after it;
    each step's label says whether it is the true continuation so far."""
    from datasets import Features, Sequence as SequenceFeature, Value

    rng, pool = ctx.rng(), sentences()
    prompts, completions, labels = [], [], []
    for _ in range(ctx.rows):
        i, steps = rng.randrange(len(pool)), rng.randint(2, 4)
        good = rng.randint(0, steps)
        row = [_sentence(i + 1 + k, ctx.max_chars) for k in range(good)]
        while len(row) < steps:
            j = rng.randrange(len(pool))
            if j != i + 1 + len(row):
                row.append(_sentence(j, ctx.max_chars))
        prompts.append(_sentence(i, ctx.max_chars))
        completions.append(row)
        labels.append([k < good for k in range(steps)])
    return ({"prompt": prompts, "completions": completions, "labels": labels},
            Features({"prompt": Value("string"), "completions": SequenceFeature(Value("string")),
                      "labels": SequenceFeature(Value("bool"))}))


#: ``conversational_tool_calling``'s tools, as ``transformers.utils.get_json_schema`` writes them.
TOOLS: tuple[dict[str, Any], ...] = (
    {"type": "function", "function": {
        "name": "count_words", "description": "Counts the words of a text.",
        "parameters": {"type": "object", "properties": {
            "text": {"type": "string", "description": "The text."}}, "required": ["text"]},
        "return": {"type": "integer", "description": "The number of words."}}},
    {"type": "function", "function": {
        "name": "get_word", "description": "Gets one word of a text.",
        "parameters": {"type": "object", "properties": {
            "text": {"type": "string", "description": "The text."},
            "index": {"type": "integer", "description": "The word's position, from 1."}},
            "required": ["text", "index"]},
        "return": {"type": "string", "description": "The word."}}},
)


def _tool_conversation(rng: random.Random, i: int, ctx: FormatContext) -> list[dict[str, Any]]:
    """user asks about a sentence, the assistant calls a tool, the tool answers (correctly), the assistant
    says the answer."""
    pool = sentences()
    text = _sentence(rng.randrange(len(pool)), ctx.max_chars)
    words = WORD_PATTERN.findall(text) or [text]
    call_id = f"{i:09d}"  # nine alphanumerics: what Mistral's format requires
    if i % 2 == 0:
        name, arguments, result = "count_words", {"text": text}, str(len(words))
        question, answer = f'How many words are in "{text}"?', f"It has {result} words."
    else:
        index = rng.randint(1, len(words))
        name, arguments, result = "get_word", {"text": text, "index": index}, words[index - 1]
        question, answer = f'What is word {index} of "{text}"?', f'Word {index} is "{result}".'
    return [
        _user(question),
        {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function",
                                               "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "name": name, "content": result},
        _assistant(answer),
    ]


def _conversational_tool_calling(ctx: FormatContext) -> tuple[dict[str, list[Any]], Features]:
    """``messages`` with ``tool_calls`` and ``tool`` turns, and the ``tools`` they may call (each message
    and tool a ``Json`` value: the turns differ in their keys)."""
    from datasets import Features, Json  # datasets >= 4.7

    rng = ctx.rng()
    messages = [_tool_conversation(rng, i, ctx) for i in range(ctx.rows)]
    tools = [[dict(tool) for tool in TOOLS] for _ in range(ctx.rows)]
    return {"messages": messages, "tools": tools}, Features({"messages": [Json()], "tools": [Json()]})


# ---------------------------------------------------------------------------------- the registries


#: format name -> builder. The task formats, then TRL's dataset types (standard and conversational).
DATASET_FORMATS: dict[str, Builder] = {
    "text": _text,
    "classification": _classification,
    "token_classification": _token_classification,
    "question_answering": _question_answering,
    "seq2seq": _seq2seq,
    "image_classification": _image_classification,
    "asr": _asr,
    "audio_classification": _audio_classification,
    "chat": _chat,
    "language_modeling": _text,
    "conversational_language_modeling": _conversational_language_modeling,
    "prompt_only": _prompt_only,
    "conversational_prompt_only": _conversational_prompt_only,
    "prompt_completion": _prompt_completion,
    "conversational_prompt_completion": _conversational_prompt_completion,
    "preference": _preference,
    "implicit_preference": _implicit_preference,
    "conversational_preference": _conversational_preference,
    "conversational_implicit_preference": _conversational_implicit_preference,
    "unpaired_preference": _unpaired_preference,
    "conversational_unpaired_preference": _conversational_unpaired_preference,
    "stepwise_supervision": _stepwise_supervision,
    "conversational_tool_calling": _conversational_tool_calling,
}

#: format name -> {role: column}: what each column is for (``tiny.batch()`` and training code read it).
FORMAT_COLUMNS: dict[str, dict[str, str]] = {
    "text": {"text": "text"},
    "classification": {"text": "text", "label": "label"},
    "token_classification": {"tokens": "tokens", "tags": "ner_tags"},
    "question_answering": {"id": "id", "question": "question", "context": "context", "answers": "answers"},
    "seq2seq": {"source": "text", "target": "target"},
    "image_classification": {"image": "image", "label": "label"},
    "asr": {"audio": "audio", "text": "text"},
    "audio_classification": {"audio": "audio", "label": "label"},
    "chat": {"messages": "messages"},
    "language_modeling": {"text": "text"},
    "conversational_language_modeling": {"messages": "messages"},
    "prompt_only": {"prompt": "prompt"},
    "conversational_prompt_only": {"prompt": "prompt"},
    "prompt_completion": {"prompt": "prompt", "completion": "completion"},
    "conversational_prompt_completion": {"prompt": "prompt", "completion": "completion"},
    "preference": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    "implicit_preference": {"chosen": "chosen", "rejected": "rejected"},
    "conversational_preference": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    "conversational_implicit_preference": {"chosen": "chosen", "rejected": "rejected"},
    "unpaired_preference": {"prompt": "prompt", "completion": "completion", "label": "label"},
    "conversational_unpaired_preference": {"prompt": "prompt", "completion": "completion", "label": "label"},
    "stepwise_supervision": {"prompt": "prompt", "completions": "completions", "labels": "labels"},
    "conversational_tool_calling": {"messages": "messages", "tools": "tools"},
}

#: formats whose labels are class ids (``ClassLabel``): their count comes from the model's config.
LABELLED_FORMATS = frozenset({"classification", "token_classification", "image_classification", "audio_classification"})

#: task (``architectures.TASKS``) -> its dataset format, where the task decides it.
TASK_FORMATS: dict[str, str] = {
    "causal-lm": "text",
    "masked-lm": "text",
    "seq2seq-lm": "seq2seq",
    "sequence-classification": "classification",
    "token-classification": "token_classification",
    "question-answering": "question_answering",
    "image-classification": "image_classification",
    "speech-seq2seq": "asr",
    "ctc": "asr",
    "rnnt": "asr",
    "tdt": "asr",
    "audio-classification": "audio_classification",
}
#: modality -> format, for the tasks :data:`TASK_FORMATS` does not name.
MODALITY_FORMATS: dict[str, str] = {"text": "text", "multimodal": "text", "image": "image_classification",
                                    "audio": "audio_classification"}

#: task -> {role: column} of its default format (the table ``tiny.batch()`` preprocesses with).
TASK_COLUMNS: dict[str, dict[str, str]] = {task: FORMAT_COLUMNS[fmt] for task, fmt in TASK_FORMATS.items()}


def default_format(task: str | None, modality: str = "text") -> str:
    """The dataset format of a fixture of ``task`` and ``modality`` that sets no ``dataset.format``."""
    if task in TASK_FORMATS:
        return TASK_FORMATS[task]
    return MODALITY_FORMATS.get(modality, "text")


def format_of(dataset: "Dataset") -> str | None:
    """The format a tiny dataset was built in (recorded as its ``info.config_name``), or None."""
    name = getattr(dataset.info, "config_name", None)
    return name if name in DATASET_FORMATS else None


def check_format(name: str) -> str:
    """``name`` if it is a format, else a :class:`ManifestError` naming the closest ones."""
    if name in DATASET_FORMATS:
        return name
    import difflib

    close = difflib.get_close_matches(name, list(DATASET_FORMATS), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"formats: {', '.join(DATASET_FORMATS)}"
    raise ManifestError(f"unknown dataset format {name!r}", field="dataset.format", hint=hint)


def label_names_from_config(config: Mapping[str, Any]) -> tuple[str, ...] | None:
    """A config's label names (``id2label`` in id order), or None where it has only transformers'
    placeholders (``LABEL_0``...): the format then names its classes by its rule."""
    id2label = config.get("id2label") or {}
    try:
        names = tuple(str(id2label[k]) for k in sorted(id2label, key=int))
    except (TypeError, ValueError):
        return None
    return None if not names or all(_PLACEHOLDER_LABEL.fullmatch(n) for n in names) else names


def options_from_repo(repo: Path) -> dict[str, Any]:
    """The :func:`build_dataset` options a built repo decides: ``num_labels`` and ``label_names`` (its
    ``config.json``) and ``sampling_rate`` (its feature extractor's ``preprocessor_config.json``)."""
    options: dict[str, Any] = {}
    config_file = Path(repo) / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        if config.get("id2label"):
            options["num_labels"] = len(config["id2label"])
        elif isinstance(config.get("num_labels"), int):
            options["num_labels"] = config["num_labels"]
        options["label_names"] = label_names_from_config(config)
    preprocessor = Path(repo) / "preprocessor_config.json"
    if preprocessor.is_file():
        rate = json.loads(preprocessor.read_text(encoding="utf-8")).get("sampling_rate")
        if isinstance(rate, int) and rate > 0:
            options["sampling_rate"] = rate
    return options


def build_dataset(format: str, params: Mapping[str, Any] | None = None, *, seed: int = 0,
                  num_labels: int | None = None, label_names: Sequence[str] | None = None,
                  sampling_rate: int | None = None) -> "Dataset":
    """A tiny ``datasets.Dataset`` of ``format`` (:data:`DATASET_FORMATS`).

    ``params``: ``rows``, ``min_chars``, ``max_chars``, ``seed`` (wins over ``seed``), ``image_size``,
    ``samples`` (see :data:`FORMAT_DEFAULTS`); other keys (``format``) are ignored. ``num_labels`` /
    ``label_names``: the classes of a labelled format (the model config's; default 2 named by the
    format's rule); ``sampling_rate``: the audio's (the feature extractor's). The format is recorded as
    ``dataset.info.config_name``; same arguments, same rows and ``save_to_disk`` bytes.
    """
    from datasets import Dataset, DatasetInfo

    builder = DATASET_FORMATS[check_format(format)]
    p = {**FORMAT_DEFAULTS, **{k: v for k, v in (params or {}).items() if k in FORMAT_DEFAULTS}}
    if sampling_rate is not None:
        p["sampling_rate"] = sampling_rate
    names = tuple(label_names) if label_names else None
    if names is not None and num_labels is not None and len(names) != num_labels:
        raise ValueError(f"{len(names)} label names for {num_labels} labels")
    ctx = FormatContext(
        rows=int(p["rows"]), seed=int((params or {}).get("seed", seed)), min_chars=int(p["min_chars"]),
        max_chars=int(p["max_chars"]), label_names=names,
        num_labels=len(names) if names else int(num_labels or DEFAULT_NUM_LABELS),
        image_size=int(p["image_size"]), sampling_rate=int(p["sampling_rate"]), samples=int(p["samples"]),
    )
    if ctx.rows < 1 or not 1 <= ctx.min_chars <= ctx.max_chars or ctx.num_labels < 1:
        raise ValueError(f"need rows >= 1, 1 <= min_chars <= max_chars and num_labels >= 1, got {ctx}")
    columns, features = builder(ctx)
    info = DatasetInfo(description=f"pytest-tinymodels tiny dataset, format {format!r}", config_name=format,
                       features=features)
    return Dataset.from_dict(columns, features=features, info=info)


def build_media_dataset(modality: str, params: Mapping[str, Any] | None = None, *, seed: int = 0) -> "Dataset":
    """The default dataset of a modality's fixtures: ``image`` -> ``image_classification``, ``audio`` ->
    ``audio_classification`` (``params`` may set ``num_labels``)."""
    if modality not in ("image", "audio"):
        raise ValueError(f"no tiny dataset for modality {modality!r}; use 'image' or 'audio' "
                         "(or build_dataset(format, ...))")
    params = dict(params or {})
    return build_dataset(MODALITY_FORMATS[modality], params, seed=seed, num_labels=params.get("num_labels"))


def save_dataset(dataset: "Dataset", dest: Path) -> None:
    """Save with ``save_to_disk`` (Arrow files, loaded memory-mapped)."""
    dataset.save_to_disk(str(dest))


def load_dataset_dir(path: Path, workdir: Path | None = None) -> "Dataset":
    """Load a dataset saved by :func:`save_dataset`, memory-mapped.

    With ``workdir``, the files are first hard-linked (copied across filesystems) into it, so
    the cache files that ``datasets`` writes beside its Arrow files on ``map()``/``filter()`` land
    in ``workdir``, never in the shared cache entry.
    """
    from datasets import load_from_disk

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        for src in Path(path).iterdir():
            if src.is_file():
                _link_or_copy(src, workdir / src.name)
        path = workdir
    return load_from_disk(str(path), keep_in_memory=False)


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
