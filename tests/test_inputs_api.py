"""The public inputs API (issue 15.1): TinyTriple.inputs() / generate_inputs() / batch(), the tokenizer slot,
model_inputs() / generation_inputs(), and manifest ``modalities`` narrowing."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

#: a few architectures of each modality, each for a task with labels.
MANIFEST = """
[fixtures.t_causal]
model_type = "llama"
task = "causal-lm"
[fixtures.t_masked]
model_type = "bert"
task = "masked-lm"
[fixtures.t_seq2seq]
model_type = "t5"
task = "seq2seq-lm"
[fixtures.t_cls]
model_type = "qwen2"
task = "sequence-classification"
[fixtures.t_bart_cls]
model_type = "bart"
task = "sequence-classification"
[fixtures.t_tokcls]
model_type = "bert"
task = "token-classification"
[fixtures.t_qa]
model_type = "roberta"
task = "question-answering"
[fixtures.t_reformer]
model_type = "reformer"
task = "causal-lm"
[fixtures.i_cls]
model_type = "vit"
task = "image-classification"
[fixtures.i_convnext]
model_type = "convnext"
task = "image-classification"
[fixtures.a_asr]
model_type = "whisper"
task = "speech-seq2seq"
[fixtures.a_ctc]
model_type = "wav2vec2"
task = "ctc"
[fixtures.a_parakeet]
model_type = "parakeet_ctc"
task = "ctc"
[fixtures.m_vlm]
model_type = "llava"
task = "image-text-to-text"
[fixtures.m_whisper_lm]
architecture = "WhisperForCausalLM"
task = "causal-lm"
[fixtures.m_git_lm]
architecture = "GitForCausalLM"
task = "causal-lm"
[fixtures.m_assistant]
model_type = "gemma4_assistant"
task = "causal-lm"
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path):
    """``tiny(name)``: a fresh triple of the module's manifest, built into the shared test cache."""
    from pytest_tinymodels import get_fixture

    manifest = tmp_path_factory.mktemp("inputs-api") / "fixtures.toml"
    manifest.write_text(MANIFEST)
    return lambda name: get_fixture(name, manifest=str(manifest), cache_dir=str(shared_cache))


LOSS_FIXTURES = ["t_causal", "t_masked", "t_seq2seq", "t_cls", "t_bart_cls", "t_tokcls", "t_qa", "t_reformer", "i_cls", "i_convnext",
                 "a_asr", "a_ctc", "a_parakeet", "m_vlm", "m_whisper_lm", "m_git_lm"]


@pytest.mark.parametrize("name", LOSS_FIXTURES)
def test_inputs_with_labels_give_a_finite_loss_and_gradients(tiny, name: str) -> None:
    triple = tiny(name)
    model = triple.model.train()
    inputs = triple.inputs(labels=True)
    assert all(v.device == model.device for v in inputs.values() if isinstance(v, torch.Tensor))
    out = model(**inputs)
    assert out.loss is not None and torch.isfinite(out.loss), name
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_labels_are_of_the_task_kind(tiny) -> None:
    cls = tiny("t_cls").inputs(labels=True, batch_size=3)
    assert cls["labels"].shape == (3,) and int(cls["labels"].max()) < tiny("t_cls").config.num_labels
    tok = tiny("t_tokcls").inputs(labels=True, seq_len=5)
    assert tok["labels"].shape == tok["input_ids"].shape == (2, 5)
    qa = tiny("t_qa").inputs(labels=True, seq_len=6)
    assert bool((qa["start_positions"] <= qa["end_positions"]).all()) and int(qa["end_positions"].max()) < 6
    lm = tiny("t_causal").inputs(labels=True)
    assert torch.equal(lm["labels"], lm["input_ids"])
    s2s = tiny("t_seq2seq").inputs(labels=True)
    assert s2s["labels"].shape == s2s["decoder_input_ids"].shape
    ctc = tiny("a_parakeet").inputs(labels=True)  # CTC length comes from the mask over the frames
    assert ctc["attention_mask"].shape[:1] == ctc["labels"].shape[:1] and "input_features" in ctc


def test_one_text_length_models_get_it_unless_asked(tiny) -> None:
    reformer = tiny("t_reformer")
    axial = 1
    for factor in reformer.config.axial_pos_shape:
        axial *= factor
    assert reformer.inputs()["input_ids"].shape[1] == axial
    assert reformer.inputs(seq_len=4)["input_ids"].shape[1] == 4


def test_inputs_follow_the_model_dtype_and_are_deterministic(tiny) -> None:
    triple = tiny("i_cls")
    a, b = triple.inputs(), triple.inputs()
    assert torch.equal(a["pixel_values"], b["pixel_values"])
    triple.model.to(torch.bfloat16)
    assert triple.inputs()["pixel_values"].dtype == torch.bfloat16


def test_classes_without_a_loss_say_so(tiny) -> None:
    from pytest_tinymodels.build.inputs import InputsError

    draft = tiny("m_assistant")
    out = draft.model(**draft.inputs())  # a forward works: inputs_embeds + the target's KV states
    assert torch.isfinite(out.logits).all()
    with pytest.raises(InputsError, match="computes no loss"):
        draft.inputs(labels=True)


def test_labels_for_a_task_without_labels_is_an_error() -> None:
    from transformers import BertConfig, BertModel

    from pytest_tinymodels.build.inputs import InputsError, model_inputs

    model = BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32))
    assert set(model_inputs(model, task="base")) >= {"input_ids", "attention_mask"}
    with pytest.raises(InputsError, match="no labels for task 'base'"):
        model_inputs(model, task="base", labels=True)


@pytest.mark.parametrize("name", ["t_causal", "t_seq2seq", "a_asr", "m_vlm"])
def test_generate_inputs(tiny, name: str) -> None:
    triple = tiny(name)
    inputs = triple.generate_inputs()
    assert "labels" not in inputs and "decoder_input_ids" not in inputs
    out = triple.model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[0] == 2 and out.shape[-1] >= 3


def test_generate_inputs_for_a_model_that_cannot_generate(tiny) -> None:
    from pytest_tinymodels.build.inputs import InputsError

    with pytest.raises(InputsError, match="cannot generate"):
        tiny("t_cls").generate_inputs()


# --------------------------------------------------------------------------- the tokenizer slot


def test_text_tasks_get_the_text_tokenizer_and_the_full_processor(tiny) -> None:
    from transformers import PreTrainedTokenizerBase

    whisper = tiny("m_whisper_lm")
    model, tokenizer, dataset = whisper
    assert isinstance(tokenizer, PreTrainedTokenizerBase)
    assert type(whisper.processor).__name__ == "WhisperProcessor" and whisper.processor.tokenizer is tokenizer
    ids = tokenizer(dataset[0]["text"], return_tensors="pt").input_ids  # reads text (the processor read it as audio)
    assert model(input_ids=ids[:, :8]).logits.shape[1] == min(8, ids.shape[1])
    vit = tiny("i_cls")  # image tasks keep the processor in the second slot
    assert vit.tokenizer is vit.processor and "ImageProcessor" in type(vit.processor).__name__


# --------------------------------------------------------------------------- batch()


@pytest.mark.parametrize("name", ["t_causal", "t_masked", "t_seq2seq", "t_cls", "t_tokcls", "t_qa", "i_cls", "a_asr",
                                  "a_ctc", "m_git_lm"])
def test_batch_is_what_a_trainer_sees_and_trains(tiny, name: str) -> None:
    triple = tiny(name)
    batch = triple.batch(3)
    assert all(v.shape[0] == 3 for v in batch.values() if isinstance(v, torch.Tensor))
    model = triple.model.train()
    out = model(**batch)
    assert out.loss is not None and torch.isfinite(out.loss), sorted(batch)
    out.loss.backward()


def test_batch_uses_the_task_columns(tiny) -> None:
    cls = tiny("t_cls")
    assert cls.batch(4)["labels"].tolist() == cls.dataset["label"][:4]
    tok = tiny("t_tokcls")
    batch = tok.batch(2)
    words = tok.dataset[0]["tokens"]
    first_subtokens = [int(x) for x in batch["labels"][0] if int(x) != -100]
    assert first_subtokens == tok.dataset[0]["ner_tags"][:len(first_subtokens)] and len(first_subtokens) >= min(
        len(words), 3)
    qa = tiny("t_qa")
    batch = qa.batch(2, max_length=128)
    row = qa.dataset[0]
    span = batch["input_ids"][0][int(batch["start_positions"][0]):int(batch["end_positions"][0]) + 1]
    assert qa.tokenizer.decode(span).strip() == row["answers"]["text"][0].strip()
    s2s = tiny("t_seq2seq").batch(2)
    assert {"labels", "decoder_input_ids"} <= set(s2s)
    lm = tiny("t_causal").batch(2)
    assert bool((lm["labels"][lm["attention_mask"] == 1] == lm["input_ids"][lm["attention_mask"] == 1]).all())
    mlm = tiny("t_masked").batch(4)
    assert bool((mlm["labels"] != -100).any()) and bool((mlm["labels"] == -100).any())


def test_batch_refuses_models_that_do_not_read_text(tiny) -> None:
    from pytest_tinymodels.batches import BatchError

    with pytest.raises(BatchError, match="reads no token ids"):
        tiny("m_assistant").batch(2)


# --------------------------------------------------------------------------- README pattern, modalities


#: the README's pattern (section "Every architecture"), verbatim, plus a check that the tokenizer read text.
README_PATTERN = '''
def test_forward(tiny_causal_lm):         # test_forward[afmoe], test_forward[apertus], ... test_forward[zamba2]
    model, tokenizer, dataset = tiny_causal_lm
    ids = tokenizer(dataset[0]["text"], return_tensors="pt").input_ids   # the text tokenizer, for every text task
    out = model(**tiny_causal_lm.inputs())      # what this architecture's forward takes: codebooks, image tokens...
    assert out.logits.isfinite().all()
    assert ids.shape[0] == 1 and tokenizer.decode(ids[0])


def test_train_step(tiny_causal_lm):
    model = tiny_causal_lm.model.train()
    model(**tiny_causal_lm.inputs(labels=True)).loss.backward()     # the task's labels
'''

#: the classes the README's tokenizer(text) pattern failed for (the slot held an audio / image processor, or
#: the model needs other inputs), Qwen 3.5 (its combined processor needs torchvision), and two plain ones.
README_CLASSES = ["llama", "gpt2", "git", "trocr", "whisper", "musicgen", "musicgen_melody", "moshi", "mllama",
                  "qwen3_5"]


def test_readme_pattern_over_the_classes_it_failed_for(pytester: pytest.Pytester, cache_env: Path) -> None:
    # in a subprocess: an in-process run would import these families' modules and pytester would then drop them
    # from sys.modules, while transformers' auto mappings keep the first classes (a later MusicgenForConditional-
    # Generation in this process then rejects its own MusicgenConfig as "not of type MusicgenConfig")
    pytester.makefile(".toml", fixtures=f'''
[fixtures.tiny_causal_lm]
task = "causal-lm"
architectures = {README_CLASSES!r}
''')
    pytester.makepyfile(README_PATTERN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2 * len(README_CLASSES))


def test_modalities_narrow_a_parametrized_fixture(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='''
[fixtures.tiny_text_lm]
task = "causal-lm"
architectures = ["llama", "gpt2", "git", "whisper", "mllama"]
modalities = ["text"]

[fixtures.tiny_any_lm]
task = "causal-lm"
architectures = ["llama", "gpt2", "git", "whisper", "mllama"]
''')
    pytester.makepyfile('''
def test_text(tiny_text_lm):
    pass

def test_any(tiny_any_lm):
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    ids = {line.strip() for line in result.outlines if "::" in line}
    assert {i for i in ids if "test_text[" in i} == {"test_modalities_narrow_a_parametrized_fixture.py::test_text[gpt2]",
                                                     "test_modalities_narrow_a_parametrized_fixture.py::test_text[llama]"}
    assert len([i for i in ids if "test_any[" in i]) == 5


def test_modalities_is_validated(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='''
[fixtures.tiny_text_lm]
task = "causal-lm"
architectures = "*"
modalities = ["txt"]
''')
    pytester.makepyfile("def test_x(tiny_text_lm):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*fixtures.toml*tiny_text_lm*modalities*'txt' is not one of text, image, audio, multimodal*"])
