"""Task-shaped tiny datasets (issue 15.2): every format's columns and features, the rules behind its labels,
determinism down to the ``save_to_disk`` bytes, the manifest's ``dataset.format`` and the build path."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("datasets")

from pytest_tinymodels.build import datasets as tds  # noqa: E402
from pytest_tinymodels.build.corpus import sentences  # noqa: E402
from pytest_tinymodels.errors import ManifestError  # noqa: E402
from pytest_tinymodels.manifest import parse_manifest_text  # noqa: E402

ROWS = 12
#: the corpus's sentences joined as snippets join them, twice (a snippet may wrap past the last sentence)
CORPUS = " ".join(sentences()) + " " + " ".join(sentences())


def follows(first: str, then: str) -> bool:
    """Whether ``then`` starts the corpus sentence after one that ``first`` starts (sentences longer than
    ``max_chars`` are cut)."""
    pool = sentences()
    return any(pool[k].startswith(first) and pool[k + 1].startswith(then) for k in range(len(pool) - 1))


@pytest.fixture(scope="module")
def built() -> dict:
    """Every format, built once (ROWS rows, seed 3; 3 classes for the labelled formats)."""
    return {name: tds.build_dataset(name, {"rows": ROWS}, seed=3,
                                    num_labels=3 if name in tds.LABELLED_FORMATS else None)
            for name in tds.DATASET_FORMATS}


# ------------------------------------------------------------------------------------- the tables


def test_tables_agree() -> None:
    from pytest_tinymodels.build.architectures import TASKS
    from pytest_tinymodels.manifest import DATASET_DEFAULTS

    assert set(tds.FORMAT_COLUMNS) == set(tds.DATASET_FORMATS)
    assert tds.LABELLED_FORMATS <= set(tds.DATASET_FORMATS)
    assert set(tds.TASK_FORMATS) <= set(TASKS) and set(tds.TASK_FORMATS.values()) <= set(tds.DATASET_FORMATS)
    assert set(tds.MODALITY_FORMATS.values()) <= set(tds.DATASET_FORMATS)
    assert {k: tds.FORMAT_DEFAULTS[k] for k in DATASET_DEFAULTS} == DATASET_DEFAULTS
    assert tds.TASK_COLUMNS["sequence-classification"] == {"text": "text", "label": "label"}
    assert tds.TASK_COLUMNS["token-classification"] == {"tokens": "tokens", "tags": "ner_tags"}
    assert tds.TASK_COLUMNS["seq2seq-lm"] == {"source": "text", "target": "target"}


@pytest.mark.parametrize(("task", "modality", "expected"), [
    ("causal-lm", "text", "text"), ("causal-lm", "audio", "text"), ("masked-lm", "text", "text"),
    ("seq2seq-lm", "text", "seq2seq"), ("sequence-classification", "text", "classification"),
    ("token-classification", "text", "token_classification"), ("question-answering", "text", "question_answering"),
    ("image-classification", "image", "image_classification"), ("speech-seq2seq", "audio", "asr"),
    ("ctc", "audio", "asr"), ("audio-classification", "audio", "audio_classification"),
    ("object-detection", "image", "image_classification"), ("image-text-to-text", "multimodal", "text"),
    (None, "text", "text"), ("base", "audio", "audio_classification"),
])
def test_default_format(task, modality, expected) -> None:
    assert tds.default_format(task, modality) == expected


def test_every_format_has_its_columns(built) -> None:
    for name, dataset in built.items():
        assert len(dataset) == ROWS, name
        assert set(dataset.column_names) == set(tds.FORMAT_COLUMNS[name].values()), name
        assert tds.format_of(dataset) == name
        for column in dataset.column_names:
            assert all(v is not None for v in dataset[column]), (name, column)


# ------------------------------------------------------------------------------- the task formats


def test_classification_labels_are_length_buckets(built) -> None:
    from datasets import ClassLabel

    ds = built["classification"]
    assert ds.features["label"] == ClassLabel(names=["length_0", "length_1", "length_2"])
    assert sorted(ds["label"]) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]  # balanced
    for row in ds:
        assert 40 <= len(row["text"]) <= 200
        assert row["label"] == tds.length_label(len(row["text"]), 40, 200, 3)
    assert [tds.length_label(n, 40, 200, 3) for n in (40, 93, 94, 147, 148, 200)] == [0, 0, 1, 1, 2, 2]
    two = tds.build_dataset("classification", {"rows": 4})
    assert two.features["label"].names == ["short", "long"]


def test_token_tags_follow_capitalised_words(built) -> None:
    tokens = ["Kiyo", "told", "Mr", "Yamaarashi", ",", "the", "2", "boys", "."]
    assert tds.token_tags(tokens, 5) == [1, 0, 1, 2, 3, 0, 4, 0, 3]
    assert tds.token_tags(tokens, 3) == [1, 0, 1, 2, 0, 0, 0, 0, 0]
    assert tds.token_tags(tokens, 2) == [1, 0, 1, 1, 0, 0, 0, 0, 0]
    ds = built["token_classification"]
    assert ds.features["ner_tags"].feature.names == ["O", "B-CAP", "I-CAP"]
    for row in ds:
        assert len(row["tokens"]) == len(row["ner_tags"]) and row["ner_tags"] == tds.token_tags(row["tokens"], 3)
        assert "".join(row["tokens"]).replace(" ", "") in CORPUS.replace(" ", "")
    assert any(1 in row for row in ds["ner_tags"])


def test_question_answering_spans_are_valid(built) -> None:
    ds = built["question_answering"]
    assert ds.features["answers"]["answer_start"].feature.dtype == "int32"  # SQuAD: a dict of lists
    assert len(set(ds["id"])) == ROWS
    for row in ds:
        (text,), (start,) = row["answers"]["text"], row["answers"]["answer_start"]
        assert row["context"][start:start + len(text)] == text
        phrase = row["question"].split('"')[1]
        assert row["context"].count(phrase) == 1  # the question points at one place
        after = row["context"][row["context"].index(phrase) + len(phrase):]
        assert after.lstrip(" ,;:.!?\"'()-").startswith(text)
        assert row["context"] in CORPUS


def test_seq2seq_target_is_the_lead(built) -> None:
    for row in built["seq2seq"]:
        assert row["target"] and row["text"].startswith(row["target"]) and row["target"] != row["text"]
        assert row["target"] == tds.lead_summary(row["text"])
    assert tds.lead_summary("One two. Three four.") == "One two."
    assert tds.lead_summary("one two three four") == "one two"


def test_chat_messages(built) -> None:
    for row in built["chat"]:
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        first = row["messages"][1]["content"].removeprefix(tds.CONTINUE.format(""))
        assert follows(first, row["messages"][2]["content"]) and follows(row["messages"][2]["content"],
                                                                         row["messages"][4]["content"])


# -------------------------------------------------------------------------------- TRL's formats


def test_prompt_completion_is_a_true_continuation(built) -> None:
    for row in built["prompt_completion"]:
        assert row["completion"].startswith(" ") and row["prompt"] + row["completion"] in CORPUS
    for row in built["conversational_prompt_completion"]:
        (user,), (assistant,) = row["prompt"], row["completion"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"].removeprefix(tds.CONTINUE.format("")) + " " + assistant["content"] in CORPUS
    for name in ("prompt_only", "conversational_prompt_only"):
        assert all(row["prompt"] for row in built[name])


def test_preference_chosen_continues_and_rejected_does_not(built) -> None:
    for row in built["preference"]:
        assert row["prompt"] + row["chosen"] in CORPUS and row["chosen"] != row["rejected"]
    for row in built["implicit_preference"]:
        assert row["chosen"] in CORPUS and row["chosen"] != row["rejected"]
        words = [c for c in zip(row["chosen"].split(), row["rejected"].split())]
        assert words[0][0] == words[0][1]  # the same (implicit) prompt
    for row in built["conversational_preference"]:
        assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
    for row in built["conversational_implicit_preference"]:
        assert row["chosen"][0] == row["rejected"][0] and row["chosen"][1] != row["rejected"][1]


def test_unpaired_preference_label_says_whether_it_continues(built) -> None:
    ds = built["unpaired_preference"]
    assert ds.features["label"].dtype == "bool" and sum(ds["label"]) == ROWS // 2
    for row in ds:
        assert (row["prompt"] + row["completion"] in CORPUS) is row["label"]
    conv = built["conversational_unpaired_preference"]
    assert sum(conv["label"]) == ROWS // 2


def test_stepwise_labels_mark_the_true_steps(built) -> None:
    for row in built["stepwise_supervision"]:
        labels = row["labels"]
        assert 2 <= len(labels) == len(row["completions"]) <= 4
        good = labels.count(True)
        assert labels == [True] * good + [False] * (len(labels) - good)
        steps = [row["prompt"], *row["completions"]]
        assert all(follows(steps[k], steps[k + 1]) for k in range(good))
        if good < len(labels):
            assert not follows(steps[good], steps[good + 1])


def test_tool_calls_answer_correctly(built) -> None:
    ds = built["conversational_tool_calling"]
    assert [t["function"]["name"] for t in ds[0]["tools"]] == ["count_words", "get_word"]
    for row in ds:
        user, call, tool, answer = row["messages"]
        assert [m["role"] for m in row["messages"]] == ["user", "assistant", "tool", "assistant"]
        (tool_call,) = call["tool_calls"]
        assert tool_call["id"] == tool["tool_call_id"] and tool_call["function"]["name"] == tool["name"]
        args = tool_call["function"]["arguments"]
        words = tds.WORD_PATTERN.findall(args["text"])
        expected = str(len(words)) if tool["name"] == "count_words" else words[args["index"] - 1]
        assert tool["content"] == expected and expected in answer["content"] and args["text"] in user["content"]


def test_conversational_rows_render_with_a_chat_template(built, tiny_llama) -> None:
    tokenizer = tiny_llama.tokenizer
    assert tokenizer.chat_template
    for name in ("chat", "conversational_language_modeling"):
        text = tokenizer.apply_chat_template(built[name][0]["messages"], tokenize=False)
        assert built[name][0]["messages"][-1]["content"] in text
    row = built["conversational_tool_calling"][1]
    text = tokenizer.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
    assert "get_word" in text and row["messages"][2]["content"] in text
    row = built["conversational_prompt_completion"][0]
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    assert full.startswith(prompt.rstrip()) and row["completion"][0]["content"] in full


# ---------------------------------------------------------------------------------------- media


def _dominant_hz(wave, rate: int) -> float:
    import numpy as np

    spectrum = np.abs(np.fft.rfft(np.asarray(wave, dtype=np.float64)))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[int(np.argmax(spectrum))])


def test_audio_labels_are_pitches(built) -> None:
    ds = built["audio_classification"]
    assert ds.features["label"].names == ["tone_220hz", "tone_349hz", "tone_554hz"]
    for row in ds:
        assert row["audio"]["sampling_rate"] == 16000 and len(row["audio"]["array"]) == 8000
        expected = 220 * 4 ** (row["label"] / 3)
        assert abs(_dominant_hz(row["audio"]["array"], 16000) - expected) < 0.03 * expected


def test_asr_text_names_the_notes(built) -> None:
    for row in built["asr"]:
        notes, wave = row["text"].split(), row["audio"]["array"]
        assert 2 <= len(notes) <= 4 and set(notes) <= set(tds.NOTES)
        bounds = [len(wave) * i // len(notes) for i in range(len(notes) + 1)]
        for i, note in enumerate(notes):
            heard = _dominant_hz(wave[bounds[i]:bounds[i + 1]], 16000)
            assert abs(heard - tds.NOTES[note]) < 12, (row["text"], i, heard)
    custom = tds.build_dataset("asr", {"rows": 2, "samples": 1600}, sampling_rate=8000)
    assert custom[0]["audio"]["sampling_rate"] == 8000 and len(custom[0]["audio"]["array"]) == 1600


def test_image_labels_are_hues(built) -> None:
    import colorsys

    import numpy as np

    pytest.importorskip("PIL")
    ds = built["image_classification"]
    assert ds.features["label"].names == ["hue_0", "hue_120", "hue_240"]
    for row in ds:
        assert row["image"].size == (32, 32) and row["image"].mode == "RGB"
        mean = np.asarray(row["image"], dtype=np.float64).reshape(-1, 3).mean(0) / 255
        hue = colorsys.rgb_to_hsv(*mean)[0]
        assert min(abs(hue - row["label"] / 3), 1 - abs(hue - row["label"] / 3)) < 0.05


# --------------------------------------------------------------------------------- determinism


def test_same_arguments_same_rows_other_seed_other_rows() -> None:
    for name in tds.DATASET_FORMATS:
        if name == "image_classification":
            continue
        a = tds.build_dataset(name, {"rows": 4}, seed=1)
        assert a.to_dict() == tds.build_dataset(name, {"rows": 4, "seed": 1}, seed=9).to_dict(), name
        assert a.to_dict() != tds.build_dataset(name, {"rows": 4}, seed=2).to_dict(), name
    assert tds.build_dataset("text", {"rows": 3}, seed=4)["text"] == tds.sample_texts(3, seed=4)


SAVE_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from pytest_tinymodels.build.datasets import DATASET_FORMATS, LABELLED_FORMATS, build_dataset, save_dataset
out, digests = Path(sys.argv[1]), {}
for name in DATASET_FORMATS:
    ds = build_dataset(name, {"rows": 5}, seed=7, num_labels=3 if name in LABELLED_FORMATS else None)
    save_dataset(ds, out / name)
    digests[name] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / name).iterdir())}
    digests[name]["fingerprint"] = ds._fingerprint
print(json.dumps(digests))
"""


def test_save_to_disk_is_byte_identical_across_processes(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    runs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(tmp_path / hash_seed)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert set(runs[0]["text"]) == {"data-00000-of-00001.arrow", "dataset_info.json", "state.json", "fingerprint"}
    state = json.loads((tmp_path / "1" / "classification" / "state.json").read_text())
    assert state["_fingerprint"] == runs[0]["classification"]["fingerprint"]
    info = json.loads((tmp_path / "1" / "classification" / "dataset_info.json").read_text())
    assert info["config_name"] == "classification"


# ------------------------------------------------------------------------- labels from a config


def test_label_names_come_from_the_config_unless_placeholders() -> None:
    assert tds.label_names_from_config({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}) is None
    assert tds.label_names_from_config({"id2label": {"1": "pos", "0": "neg"}}) == ("neg", "pos")
    assert tds.label_names_from_config({}) is None
    ds = tds.build_dataset("classification", {"rows": 4}, label_names=["neg", "mid", "pos"])
    assert ds.features["label"].names == ["neg", "mid", "pos"]
    with pytest.raises(ValueError, match="2 label names for 3 labels"):
        tds.build_dataset("classification", {"rows": 4}, num_labels=3, label_names=["a", "b"])


def test_options_from_repo(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}}))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"sampling_rate": 24000}))
    assert tds.options_from_repo(tmp_path) == {"num_labels": 3, "label_names": None, "sampling_rate": 24000}
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "O", "1": "B-PER"}}))
    assert tds.options_from_repo(tmp_path)["label_names"] == ("O", "B-PER")


def test_too_small_bounds_say_what_to_change() -> None:
    with pytest.raises(ManifestError, match="max_chars"):
        tds.build_dataset("classification", {"rows": 4, "min_chars": 10, "max_chars": 11}, num_labels=5)
    with pytest.raises(ManifestError, match="raise max_chars"):
        tds.build_dataset("question_answering", {"rows": 2, "min_chars": 1, "max_chars": 3})


# ------------------------------------------------------------------------------------ manifest


def test_manifest_accepts_a_format_and_names_a_typo() -> None:
    spec = parse_manifest_text('[fixtures.a]\nmodel_type = "llama"\ndataset = { format = "preference", rows = 4 }\n')["a"]
    assert spec.dataset["format"] == "preference" and spec.dataset["rows"] == 4
    assert "format" not in parse_manifest_text('[fixtures.a]\nmodel_type = "llama"\n')["a"].dataset
    with pytest.raises(ManifestError) as err:
        parse_manifest_text('[fixtures.a]\nmodel_type = "llama"\ndataset = { format = "prefrence" }\n', "my.toml")
    assert (err.value.fixture, err.value.field, str(err.value.path)) == ("a", "dataset.format", "my.toml")
    assert "'preference'" in err.value.hint and "prefrence" in str(err.value)
    with pytest.raises(ManifestError, match="dataset.format.*must be a string"):
        parse_manifest_text('[fixtures.a]\nmodel_type = "llama"\ndataset = { format = 3 }\n')
    with pytest.raises(ManifestError, match="unknown dataset format"):
        parse_manifest_text('[defaults]\ndataset = { format = "nope" }\n[fixtures.a]\nmodel_type = "llama"\n')


# ---------------------------------------------------------------------------------- build path


def test_built_entry_has_the_manifest_format(tmp_path: Path) -> None:
    from pytest_tinymodels import get_fixture

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.pref_gpt2]\nmodel_type = "gpt2"\narchitecture = "GPT2LMHeadModel"\n'
                        'dataset = { format = "conversational_preference", rows = 6 }\n'
                        '[fixtures.cls_bert]\nmodel_type = "bert"\ntask = "sequence-classification"\n'
                        'config = { num_labels = 4 }\n')
    triple = get_fixture("pref_gpt2", manifest=str(manifest), cache_dir=str(tmp_path / "cache"))
    assert triple.dataset.column_names == ["prompt", "chosen", "rejected"] and len(triple.dataset) == 6
    assert triple.recipe["dataset"] == {"format": "conversational_preference", "rows": 6,
                                        "columns": ["prompt", "chosen", "rejected"]}
    cls = get_fixture("cls_bert", manifest=str(manifest), cache_dir=str(tmp_path / "cache"))
    assert cls.model.config.num_labels == 4 and cls.dataset.features["label"].num_classes == 4
    assert tds.format_of(cls.dataset) == "classification"
    digest = hashlib.sha256(json.dumps(cls.dataset.to_dict(), sort_keys=True).encode()).hexdigest()
    again = tds.build_dataset("classification", cls.recipe["spec"]["dataset"], seed=0, num_labels=4)
    assert digest == hashlib.sha256(json.dumps(again.to_dict(), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------- TRL, if installed


TRL_FORMATS = [name for name in tds.DATASET_FORMATS
               if name not in tds.LABELLED_FORMATS | {"question_answering", "seq2seq", "asr"}]


def test_trl_reads_the_post_training_formats(built, tiny_llama) -> None:
    """TRL's own data utilities tell standard from conversational rows and render them with the chat template."""
    data_utils = pytest.importorskip("trl.data_utils")
    for name in TRL_FORMATS:
        row = built[name][0]
        assert data_utils.is_conversational(row) == (name == "chat" or name.startswith("conversational_")), name
        rendered = data_utils.maybe_apply_chat_template(row, tiny_llama.tokenizer, tools=row.get("tools"))
        assert set(rendered) <= set(row) | {"text"} and all(rendered[k] for k in rendered if k != "label"), name
    implicit = data_utils.maybe_extract_prompt(built["implicit_preference"][0])
    assert implicit["prompt"] and implicit["chosen"] != implicit["rejected"]
