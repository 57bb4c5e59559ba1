"""``transformers.Trainer`` runs 2 steps on each task's tiny dataset (issue 15.2).

For the built-in fixtures (causal LM: tiny_llama, tiny_gpt2; masked LM: tiny_bert; seq2seq: tiny_t5) and
qwen2 sequence-classification / token-classification / question-answering fixtures, the dataset is
preprocessed the standard way (the fixture's own tokenizer, the task's collator, the columns named by
``build.datasets.TASK_COLUMNS``) and trained for two optimizer steps: the loss is finite and the weights move.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")  # Trainer needs it

from pytest_tinymodels.build.datasets import TASK_COLUMNS  # noqa: E402

pytestmark = pytest.mark.slow

QWEN2_MANIFEST = """
[fixtures.trainer_qwen2_cls]
model_type = "qwen2"
task = "sequence-classification"

[fixtures.trainer_qwen2_tok]
model_type = "qwen2"
task = "token-classification"

[fixtures.trainer_qwen2_qa]
model_type = "qwen2"
task = "question-answering"
"""
MAX_LENGTH = 64


@pytest.fixture(scope="module")
def qwen2_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trainer-manifest") / "fixtures.toml"
    path.write_text(QWEN2_MANIFEST)
    return path


def train_two_steps(model, dataset, collator, tmp_path: Path) -> None:
    """Two Trainer steps; the loss is finite and some weight changed."""
    from transformers import Trainer, TrainingArguments

    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                             report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True)
    result = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator).train()
    assert result.global_step == 2
    assert math.isfinite(result.training_loss), result
    moved = [n for n, p in model.named_parameters() if n in before and not torch.equal(before[n], p.detach())]
    assert moved, "no weight changed after two steps"


def _lm_dataset(tokenizer, dataset, task: str):
    column = TASK_COLUMNS[task]["text"]
    return dataset.map(lambda b: tokenizer(b[column], truncation=True, max_length=MAX_LENGTH), batched=True,
                       remove_columns=dataset.column_names)


@pytest.mark.parametrize("name", ["tiny_llama", "tiny_gpt2"])
def test_causal_lm_trainer(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from transformers import DataCollatorForLanguageModeling

    model, tokenizer, dataset = request.getfixturevalue(name)
    assert dataset.column_names == ["text"]
    train_two_steps(model, _lm_dataset(tokenizer, dataset, "causal-lm"),
                    DataCollatorForLanguageModeling(tokenizer, mlm=False), tmp_path)


def test_masked_lm_trainer(tiny_bert, tmp_path: Path) -> None:
    from transformers import DataCollatorForLanguageModeling

    model, tokenizer, dataset = tiny_bert
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.3, seed=0)
    train_two_steps(model, _lm_dataset(tokenizer, dataset, "masked-lm"), collator, tmp_path)


def test_seq2seq_trainer(tiny_t5, tmp_path: Path) -> None:
    from transformers import DataCollatorForSeq2Seq

    model, tokenizer, dataset = tiny_t5
    cols = TASK_COLUMNS["seq2seq-lm"]
    assert {cols["source"], cols["target"]} <= set(dataset.column_names)

    def preprocess(batch):
        encoded = tokenizer(batch[cols["source"]], truncation=True, max_length=MAX_LENGTH)
        encoded["labels"] = tokenizer(text_target=batch[cols["target"]], truncation=True, max_length=MAX_LENGTH)["input_ids"]
        return encoded

    train_two_steps(model, dataset.map(preprocess, batched=True, remove_columns=dataset.column_names),
                    DataCollatorForSeq2Seq(tokenizer, model=model), tmp_path)


def test_sequence_classification_trainer(qwen2_manifest: Path, tmp_path: Path) -> None:
    from transformers import DataCollatorWithPadding

    from pytest_tinymodels import get_fixture

    model, tokenizer, dataset = get_fixture("trainer_qwen2_cls", manifest=str(qwen2_manifest))
    cols = TASK_COLUMNS["sequence-classification"]
    assert dataset.features[cols["label"]].num_classes == model.config.num_labels
    tokenized = dataset.map(lambda b: tokenizer(b[cols["text"]], truncation=True, max_length=MAX_LENGTH), batched=True,
                            remove_columns=[c for c in dataset.column_names if c != cols["label"]])
    if cols["label"] != "labels":
        tokenized = tokenized.rename_column(cols["label"], "labels")
    train_two_steps(model, tokenized, DataCollatorWithPadding(tokenizer), tmp_path)


def test_token_classification_trainer(qwen2_manifest: Path, tmp_path: Path) -> None:
    from transformers import DataCollatorForTokenClassification

    from pytest_tinymodels import get_fixture

    model, tokenizer, dataset = get_fixture("trainer_qwen2_tok", manifest=str(qwen2_manifest))
    cols = TASK_COLUMNS["token-classification"]
    assert dataset.features[cols["tags"]].feature.num_classes == model.config.num_labels

    def preprocess(batch):  # label the first sub-token of each word, -100 elsewhere
        encoded = tokenizer(batch[cols["tokens"]], is_split_into_words=True, truncation=True, max_length=MAX_LENGTH)
        encoded["labels"] = []
        for i, tags in enumerate(batch[cols["tags"]]):
            previous, row = None, []
            for word in encoded.word_ids(i):
                row.append(-100 if word is None or word == previous else tags[word])
                previous = word
            encoded["labels"].append(row)
        return encoded

    tokenized = dataset.map(preprocess, batched=True, remove_columns=dataset.column_names)
    assert any(label > 0 for row in tokenized["labels"] for label in row), "the capitalised words are tagged"
    train_two_steps(model, tokenized, DataCollatorForTokenClassification(tokenizer), tmp_path)


def test_question_answering_trainer(qwen2_manifest: Path, tmp_path: Path) -> None:
    from transformers import DataCollatorWithPadding

    from pytest_tinymodels import get_fixture

    model, tokenizer, dataset = get_fixture("trainer_qwen2_qa", manifest=str(qwen2_manifest))
    cols = TASK_COLUMNS["question-answering"]

    def preprocess(batch):  # the answer's first and last tokens in the context (the standard SQuAD recipe)
        encoded = tokenizer(batch[cols["question"]], batch[cols["context"]], truncation="only_second",
                            max_length=4 * MAX_LENGTH, return_offsets_mapping=True)
        starts, ends = [], []
        for i, offsets in enumerate(encoded.pop("offset_mapping")):
            answer = batch[cols["answers"]][i]
            first, last = answer["answer_start"][0], answer["answer_start"][0] + len(answer["text"][0])
            in_context = [k for k, s in enumerate(encoded.sequence_ids(i)) if s == 1]
            starts.append(next(k for k in in_context if offsets[k][0] <= first < offsets[k][1]))
            ends.append(next(k for k in in_context if offsets[k][0] < last <= offsets[k][1]))
        encoded["start_positions"], encoded["end_positions"] = starts, ends
        return encoded

    tokenized = dataset.map(preprocess, batched=True, remove_columns=dataset.column_names)
    for row, source in zip(tokenized.select(range(4)), dataset.select(range(4))):
        span = tokenizer.decode(row["input_ids"][row["start_positions"]:row["end_positions"] + 1])
        assert source[cols["answers"]]["text"][0] in span
    train_two_steps(model, tokenized, DataCollatorWithPadding(tokenizer), tmp_path)
