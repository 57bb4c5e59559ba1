"""The tiny hub as real suites use the Hub: id conventions, stand-ins for ids that name no class, library
layouts (sentence-transformers), LoRA adapter repos, revisions, dataset repos with named configs, and the
summary's hints for ids that were asked for and not served — in both hub modes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import sys
from pathlib import Path

import pytest

from pytest_tinymodels.errors import ManifestError
from pytest_tinymodels.hub.registry import load_hub_registry, miss_hint
from pytest_tinymodels.hub.server import HubServer, hub_environment
from pytest_tinymodels.manifest import load_manifest


def _registry(tmp_path: Path, text: str = ""):
    path = tmp_path / "fixtures.toml"
    path.write_text(text)
    return load_hub_registry(load_manifest(path))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_network(tmp_path: Path):
    """HF_ENDPOINT at a closed loopback port, a private HF cache, online mode: escapes fail fast."""
    with hub_environment(endpoint=f"http://127.0.0.1:{_closed_port()}", cache_dir=tmp_path / "outer-hf-cache",
                         offline=False):
        yield


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- ids


def test_id_conventions_case_insensitive_classes_and_variant_suffixes(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    reward = reg.resolve("model", "trl-internal-testing/tiny-GptNeoXForSequenceClassification")
    assert reward is not None, "class names in ids match case-insensitively"
    assert reward.spec.architecture == "GPTNeoXForSequenceClassification"
    assert dict(reward.spec.config) == {"num_labels": 1}  # trl-internal-testing's reward-model convention
    other = reg.resolve("model", "hf-internal-testing/tiny-random-BertForSequenceClassification")
    assert "num_labels" not in other.spec.config  # elsewhere: the library default
    declared = _registry(tmp_path, '[hub.ids]\n"trl-internal-testing/tiny-LlamaForSequenceClassification" = '
                                   '{ architecture = "LlamaForSequenceClassification", config = { num_labels = 3 } }\n')
    assert declared.resolve("model", "trl-internal-testing/tiny-LlamaForSequenceClassification").spec.config[
        "num_labels"] == 3  # a declaration's own value wins

    from pytest_tinymodels.manifest import TOKENIZER_KEYS

    if "chat_template" not in TOKENIZER_KEYS:
        pytest.skip("the manifest has no tokenizer.chat_template yet")
    no_think = reg.resolve("model", "trl-internal-testing/tiny-Qwen3ForCausalLM-NoThink").spec.tokenizer
    assert (no_think["chat_template"], no_think["thinking"]) == ("qwen3", False)
    instruct = reg.resolve("model", "trl-internal-testing/tiny-Qwen3ForCausalLM-Instruct-2507").spec.tokenizer
    assert instruct.get("thinking") is False
    llama2 = reg.resolve("model", "trl-internal-testing/tiny-LlamaForCausalLM-2").spec.tokenizer
    assert llama2["chat_template"] == "llama2"
    unknown = reg.resolve("model", "trl-internal-testing/tiny-Qwen2ForCausalLM-whatever").spec
    assert unknown.architecture == "Qwen2ForCausalLM" and "chat_template" not in unknown.tokenizer


@pytest.mark.parametrize(("repo_id", "hidden"), [
    ("trl-internal-testing/tiny-Qwen2ForCausalLM-2.5", 8),  # TRL's decoders: 8 wide
    ("trl-internal-testing/tiny-Qwen3MoeForCausalLM", 8),
    ("trl-internal-testing/tiny-LlamaForSequenceClassification-3.2", 16),  # its reward models
    ("trl-internal-testing/tiny-LlavaForConditionalGeneration", 16),  # its vision-language models
    ("trl-internal-testing/tiny-T5ForConditionalGeneration", 24),
    ("trl-internal-testing/tiny-PhiForCausalLM", None),  # a class TRL does not publish: the default sizes
    ("hf-internal-testing/tiny-random-LlamaForCausalLM", None),  # other organisations: the default sizes
])
def test_size_conventions(tmp_path: Path, repo_id: str, hidden: int | None) -> None:
    spec = _registry(tmp_path).resolve("model", repo_id).spec
    if hidden is None:
        assert spec.size is None and "size" not in spec.build_key_fields()
    else:
        assert spec.size["hidden"] == hidden and spec.size["intermediate"] == 32 and spec.size["layers"] == 2
        assert spec.build_key_fields()["size"] == dict(sorted(spec.size.items()))
    hint = _registry(tmp_path).declaration_hint("model", repo_id)  # offline mode: the line that declares it
    assert ("size = { " in hint) == (hidden is not None) and (hidden is None or f"hidden = {hidden}," in hint), hint
    declared = _registry(tmp_path, f'[hub.ids]\n"{repo_id}" = {{ architecture = "{spec.architecture}", '
                                   'size = { hidden = 32 } }\n').resolve("model", repo_id).spec
    assert declared.size["hidden"] == 32  # a declaration's own value wins, kind by kind
    assert hidden is None or declared.size["intermediate"] == 32


def _trl_ids() -> list[str]:
    import transformers

    from pytest_tinymodels.hub.conventions import TRL_TINY_CLASSES

    installed = set(dir(transformers))  # the lazy module's names: no model module is imported
    return [f"trl-internal-testing/tiny-{cls}" for classes in TRL_TINY_CLASSES.values() for cls in classes
            if cls in installed]


@pytest.mark.parametrize("repo_id", _trl_ids())
def test_trl_sizes_build(tmp_path: Path, repo_id: str) -> None:
    """Every class TRL publishes builds at TRL's sizes (the build smoke-tests a forward) and has them."""
    from pytest_tinymodels.build import build_entry

    spec = _registry(tmp_path).resolve("model", repo_id).spec
    recipe = build_entry(spec, tmp_path / "entry")
    config = json.loads((tmp_path / "entry" / "repo" / "config.json").read_text())
    text = config.get("text_config") or config
    width = text.get("hidden_size") or text.get("d_model") or text.get("n_embd")
    assert width == spec.size["hidden"], (recipe["architecture"], width)
    for key in ("num_hidden_layers", "n_layer", "encoder_layers", "decoder_layers"):
        assert text.get(key) in (None, 2), key  # (NemotronH keeps one layer of each of its 4 block types)


@pytest.mark.parametrize(("repo_id", "architecture", "num_labels", "library"), [
    ("org/stsb-bert-tiny-safetensors", "BertModel", None, "sentence-transformers"),
    ("org/reranker-bert-tiny-gooaq-bce", "BertForSequenceClassification", 1, "sentence-transformers"),
    ("distilbert/distilbert-base-uncased", "DistilBertForMaskedLM", None, None),
    ("openai/clip-vit-base-patch32", "CLIPModel", None, None),
    ("naver/splade-cocondenser-ensembledistil", "BertForMaskedLM", None, "sentence-transformers"),
    ("cross-encoder/ms-marco-MiniLM-L6-v2", "BertForSequenceClassification", 1, "sentence-transformers"),
    ("sentence-transformers/all-MiniLM-L6-v2", "BertModel", None, "sentence-transformers"),
    ("FacebookAI/xlm-roberta-base", "XLMRobertaForMaskedLM", None, None),
])
def test_stand_ins_are_guessed_from_the_words_of_the_id(tmp_path: Path, repo_id: str, architecture: str,
                                                         num_labels: int | None, library: str | None) -> None:
    reg = _registry(tmp_path, f'[hub.ids]\n"{repo_id}" = {{}}\n')
    target = reg.resolve("model", repo_id)
    from pytest_tinymodels.build import architectures

    spec = target.spec
    assert architectures.resolve(spec.model_type, spec.architecture, spec.task).class_name == architecture
    assert spec.config.get("num_labels") == num_labels and target.library == library
    hint = miss_hint("model", repo_id)  # the summary's hint uses the same guess
    assert f'"{repo_id}" = {{ architecture = "{architecture}"' in hint
    assert "LlamaForCausalLM" not in hint


def test_stand_ins_for_undeclared_ids_are_opt_in(tmp_path: Path) -> None:
    assert _registry(tmp_path).resolve("model", "org/reranker-bert-x") is None
    some = _registry(tmp_path, '[hub]\nstand_ins = ["sentence-transformers/*"]\n')
    assert some.resolve("model", "sentence-transformers/all-MiniLM-L6-v2").library == "sentence-transformers"
    assert some.resolve("model", "org/reranker-bert-x") is None
    every = _registry(tmp_path, "[hub]\nstand_ins = true\n")
    assert every.resolve("model", "org/reranker-bert-x").spec.config["num_labels"] == 1
    assert every.resolve("model", "foo/no-model-words-here") is None
    assert every.resolve("dataset", "org/reranker-bert-x") is None  # stand-ins are models


def test_dataset_hint_names_the_configs_asked_for() -> None:
    assert miss_hint("dataset", "trl-internal-testing/zen", ["standard_preference", "weird"]) == (
        '[hub.datasets."trl-internal-testing/zen"] configs = { standard_preference = { format = "preference" },'
        ' weird = { fixture = "tiny_llama" } }')
    assert "default" in miss_hint("dataset", "org/ds")  # no config asked: one default config
    assert "tiny_llama" not in miss_hint("model", "org/reranker-bert-tiny")
    for no_model_type in ("hf-internal-testing/tiny-sd-pipe", "MLP"):  # a pipeline, a test's module name
        assert miss_hint("model", no_model_type) == (
            f'[hub.ids] "{no_model_type}" = "<Class>"  # the class it stands for, a model type or a fixture')


@pytest.mark.parametrize(("text", "field", "fragment"), [
    ('[hub.ids]\n"org/x" = {}\n', 'hub.ids."org/x"', "names a model type"),
    ('[hub.ids]\n"org/bert-x" = { library = "spacy" }\n', 'hub.ids."org/bert-x".library', "unknown library"),
    ('[hub.ids]\n"org/bert-x" = { model_type = "bert", revisions = ["a..b"] }\n', 'hub.ids."org/bert-x".revisions',
     "not a usable revision"),
    ('[hub.ids]\n"org/a" = { adapter = { base = "tiny_llama", rank = 4 } }\n', 'hub.ids."org/a".adapter.rank',
     "unknown key 'rank'"),
    ('[hub.ids]\n"org/a" = { adapter = { r = 4 } }\n', 'hub.ids."org/a".adapter.base', "needs its base"),
    ('[hub.ids]\n"org/a" = { adapter = { base = "tiny_llama", type = "ia3" } }\n', 'hub.ids."org/a".adapter.type',
     "not one of"),
    ('[hub]\nstand_ins = "yes"\n', "hub.stand_ins", "list of id globs"),
    ('[hub]\nany_commit = 1\n', "hub.any_commit", "true or false"),
    ('[hub.datasets."o/d"]\nconfigs = { a = { format = "preferenze" } }\n', 'hub.datasets."o/d".configs.a.format',
     "did you mean 'preference'"),
    ('[hub.datasets."o/d"]\nconfigs = { a = { format = "text", fixture = "tiny_llama" } }\n',
     'hub.datasets."o/d".configs.a', "exactly one of"),
    ('[hub.datasets."o/d"]\nconfigs = { a = { data_files = { train = "missing.jsonl" } } }\n',
     'hub.datasets."o/d".configs.a.data_files.train', "does not exist"),
    ('[hub.datasets."o/d"]\nconfigs = { a = { fixture = "nope" } }\n', 'hub.datasets."o/d".configs.a.fixture',
     "no fixture"),
])
def test_hub_table_errors_name_the_field(tmp_path: Path, text: str, field: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        _registry(tmp_path, text)
    assert info.value.field == field and fragment in str(info.value), str(info.value)
    assert info.value.path == tmp_path / "fixtures.toml"


# --------------------------------------------------------------------------- revisions


SHA = "0123456789abcdef0123456789abcdef01234567"


def test_server_resolves_extra_revisions_and_any_commit(tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download, model_info
    from huggingface_hub.errors import RevisionNotFoundError

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text('{"model_type": "gpt2"}')
    names = {"org/pinned": (frozenset({"v2.0.0", "refs/pr/14"}), False), "org/any": (frozenset(), True)}
    with HubServer({"org/pinned": repo, "org/any": repo}, revision_names=lambda t, i: names[i]) as server, \
            hub_environment(endpoint=server.endpoint, cache_dir=tmp_path / "cache", offline=False):
        for revision in ("main", "v2.0.0", "refs/pr/14"):
            assert json.loads(Path(hf_hub_download("org/pinned", "config.json", revision=revision)).read_text())
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download("org/pinned", "config.json", revision="v9")
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download("org/pinned", "config.json", revision=SHA)  # any commit is opt-in
        path = Path(hf_hub_download("org/any", "config.json", revision=SHA))
        assert path.parent.name == SHA  # the pinned commit is the one reported
        assert model_info("org/any", revision=SHA).sha == SHA
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download("org/any", "config.json", revision="v2.0.0")


def test_offline_cache_holds_the_extra_revisions(tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download

    from pytest_tinymodels.hub.repos import materialize

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text('{"model_type": "gpt2"}')
    cache = tmp_path / "hub-cache"
    sha = materialize(cache, "model", "org/m", repo, ("v2.0.0", "refs/pr/14", SHA))
    assert (cache / "models--org--m" / "refs" / "refs" / "pr" / "14").read_text() == sha
    with hub_environment(cache_dir=cache, offline=True):
        for revision in ("v2.0.0", "refs/pr/14", SHA, "main"):
            assert Path(hf_hub_download("org/m", "config.json", revision=revision)).is_file()
        assert Path(snapshot_download("org/m", revision="v2.0.0")).name == sha


# --------------------------------------------------------------------------- layouts, adapters, dataset repos


def test_dataset_repo_with_named_configs_is_read_by_load_dataset(tmp_path: Path) -> None:
    import datasets

    from pytest_tinymodels.hub.layouts import build_dataset_repo

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"question": "a?", "answer": "b"}\n{"question": "c?", "answer": "d"}\n')
    configs = load_hub_registry(load_manifest(_write(tmp_path, f"""
        [hub.datasets."org/tiny-pref".configs]
        standard_preference = {{ format = "preference", rows = 8 }}
        conversational_language_modeling = {{ format = "conversational_language_modeling" }}
        raw = {{ data_files = {{ train = "{rows.name}" }} }}
    """))).resolve("dataset", "org/tiny-pref").configs
    repo = build_dataset_repo("org/tiny-pref", configs, tmp_path / "repo", lambda name: None)
    again = build_dataset_repo("org/tiny-pref", configs, tmp_path / "again", lambda name: None)
    assert _digest(repo) == _digest(again)  # deterministic bytes
    assert (repo / "standard_preference" / "train-00000-of-00001.parquet").is_file()
    assert "config_name: conversational_language_modeling" in (repo / "README.md").read_text()
    with HubServer({"datasets/org/tiny-pref": repo}) as server, \
            hub_environment(endpoint=server.endpoint, cache_dir=tmp_path / "hf", offline=False,
                            datasets_cache=tmp_path / "ds-cache"):
        pref = datasets.load_dataset("org/tiny-pref", "standard_preference", split="train")
        test = datasets.load_dataset("org/tiny-pref", "standard_preference", split="test")
        chat = datasets.load_dataset("org/tiny-pref", "conversational_language_modeling", split="train")
        raw = datasets.load_dataset("org/tiny-pref", "raw", split="train")
    assert {"prompt", "chosen", "rejected"} <= set(pref.column_names) and pref.num_rows == 8 and test.num_rows == 2
    assert chat.column_names == ["messages"] and raw["answer"] == ["b", "d"]


def _write(tmp_path: Path, text: str) -> Path:
    import textwrap

    path = tmp_path / "fixtures.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_library_layout_files_and_determinism(tmp_path: Path) -> None:
    from pytest_tinymodels.hub.layouts import write_library_layout

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32, "vocab_size": 99,
                                                  "max_position_embeddings": 512}))
    (repo / "model.safetensors").write_bytes(b"\0" * 8)
    st = write_library_layout(repo, tmp_path / "st", "sentence-transformers", "base")
    assert [m["type"] for m in json.loads((st / "modules.json").read_text())] == [
        "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize"]
    assert json.loads((st / "1_Pooling" / "config.json").read_text())["word_embedding_dimension"] == 32
    assert json.loads((st / "sentence_bert_config.json").read_text())["max_seq_length"] == 256
    ce = write_library_layout(repo, tmp_path / "ce", "sentence-transformers", "sequence-classification")
    config = json.loads((ce / "config.json").read_text())
    assert config["sentence_transformers"]["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    assert config["hidden_size"] == 32 and not (ce / "modules.json").exists()
    assert _digest(write_library_layout(repo, tmp_path / "st2", "sentence-transformers", "base")) == _digest(st)


def test_adapter_repo_is_deterministic_and_loads_with_peft(tmp_path: Path, shared_cache: Path) -> None:
    pytest.importorskip("peft")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from pytest_tinymodels.cache import Cache
    from pytest_tinymodels.hub.layouts import build_adapter
    from pytest_tinymodels.session import TinySession

    session = TinySession(load_manifest(None), Cache(shared_cache))
    base = Path(session.ensure(session.variants("tiny_llama")[0]).path) / "repo"
    settings = {"type": "lora", "r": 4, "seed": 0, "init_lora_weights": False}
    one = build_adapter(base, "org/base", settings, "causal-lm", tmp_path / "one")
    two = build_adapter(base, "org/base", settings, "causal-lm", tmp_path / "two")
    assert _digest(one) == _digest(two)
    config = json.loads((one / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/base" and config["r"] == 4
    assert config["task_type"] == "CAUSAL_LM" and (one / "tokenizer.json").is_file()
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)), str(one))
    assert sum(1 for n, _ in model.named_parameters() if "lora_A" in n) > 0


def test_adapter_without_peft_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_tinymodels.hub.layouts import AdapterError, build_adapter

    monkeypatch.setitem(sys.modules, "peft", None)
    (tmp_path / "base").mkdir()
    with pytest.raises(AdapterError, match="needs the peft library.*pip install peft"):
        build_adapter(tmp_path / "base", "org/base", {"r": 4}, "causal-lm", tmp_path / "out")


# --------------------------------------------------------------------------- pytest --tiny-hub, both modes

MANIFEST = """
[hub]
any_commit = true

[hub.ids]
"org/stsb-bert-tiny-safetensors" = {}
"org/reranker-bert-tiny-gooaq-bce" = { revisions = ["v2.0.0", "refs/pr/14"] }
"org/lora" = { adapter = { base = "tiny_llama", r = 4 } }
"trl-internal-testing/tiny-GptNeoXForSequenceClassification" = "GPTNeoXForSequenceClassification"

[hub.datasets."my-org/tiny-pref"]
configs = { standard_preference = { format = "preference" }, conversational_language_modeling = { format = "conversational_language_modeling" } }
"""

SUITE = """
import importlib.util

import datasets
import pytest
from transformers import AutoConfig, AutoModelForSequenceClassification

SHA = "0123456789abcdef0123456789abcdef01234567"
needs_st = pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                              reason="sentence-transformers is not installed")


@needs_st
def test_sentence_transformer_encodes():
    from sentence_transformers import SentenceTransformer

    embeddings = SentenceTransformer("org/stsb-bert-tiny-safetensors").encode(["hello world", "tiny models"])
    assert embeddings.shape[0] == 2 and embeddings.shape[1] > 0


@needs_st
def test_cross_encoder_predicts_one_score_per_pair():
    from sentence_transformers import CrossEncoder

    scores = CrossEncoder("org/reranker-bert-tiny-gooaq-bce").predict([("a query", "a passage"), ("b", "c")])
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()  # one label + the sigmoid activation


def test_reward_model_has_one_label():
    model = AutoModelForSequenceClassification.from_pretrained("trl-internal-testing/tiny-GptNeoXForSequenceClassification")
    assert model.score.weight.shape[0] == 1


def test_revisions_and_pinned_commits():
    for revision in ("v2.0.0", "refs/pr/14", SHA):
        assert AutoConfig.from_pretrained("org/reranker-bert-tiny-gooaq-bce", revision=revision).num_labels == 1


def test_lora_adapter_repo():
    peft = pytest.importorskip("peft")
    model = peft.AutoPeftModelForCausalLM.from_pretrained("org/lora")
    assert model.peft_config["default"].r == 4


def test_dataset_configs():
    pref = datasets.load_dataset("my-org/tiny-pref", "standard_preference", split="train")
    chat = datasets.load_dataset("my-org/tiny-pref", "conversational_language_modeling", split="test")
    assert {"chosen", "rejected"} <= set(pref.column_names) and chat.column_names == ["messages"]


def test_undeclared_ids_fail_as_on_the_hub():
    with pytest.raises(Exception):
        datasets.load_dataset("trl-internal-testing/zen", "standard_prompt_only", split="train")
    with pytest.raises(OSError):
        AutoConfig.from_pretrained("cross-encoder/ms-marco-MiniLM-L6-v2")
"""


@pytest.mark.parametrize("mode", ["--tiny-hub", "--tiny-hub-offline"])
def test_real_suite_shapes_in_both_hub_modes(pytester: pytest.Pytester, preloaded_libraries: None, cache_env: Path,
                                            no_network: None, mode: str) -> None:
    pytester.makefile(".toml", fixtures=MANIFEST)
    pytester.makepyfile(test_real=SUITE)
    result = pytester.runpytest(mode, "-p", "no:cacheprovider", "-W", "ignore::FutureWarning")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()[-4000:]
    # the test extra installs peft (small; no numpy/torch change), not sentence-transformers (it pulls
    # scikit-learn and scipy): without a library its tests skip and its repos are never asked for
    has_st, has_peft = (importlib.util.find_spec(name) is not None for name in ("sentence_transformers", "peft"))
    assert outcomes["passed"] == 4 + 2 * has_st + has_peft
    result.stdout.fnmatch_lines_random([
        "model   org/reranker-bert-tiny-gooaq-bce * BertForSequenceClassification (num_labels=1) + sentence-transformers*",
        *(["model   org/lora * LoRA adapter (r=4) on org/lora-base*"] if has_peft else []),
        "dataset my-org/tiny-pref * dataset configs standard_preference, conversational_language_modeling*",
        # every id asked for and not served is named, with the line that would serve it, in both modes
        '*trl-internal-testing/zen * not served *[[]hub.datasets."trl-internal-testing/zen"[]] configs = '
        '{ standard_prompt_only = { format = "prompt_only" } }*',
        '*cross-encoder/ms-marco-MiniLM-L6-v2 * not served *architecture = "BertForSequenceClassification", '
        'config = { num_labels = 1 }, library = "sentence-transformers"*',
    ])


@pytest.mark.parametrize("mode", ["--tiny-hub", "--tiny-hub-offline"])
def test_dataset_configs_under_xdist(pytester: pytest.Pytester, cache_env: Path, mode: str, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    pytester.makefile(".toml", fixtures=MANIFEST)
    pytester.makepyfile(test_ds="""
        import datasets
        import pytest

        @pytest.mark.parametrize("config", ["standard_preference", "conversational_language_modeling"] * 2)
        def test_config(config):
            for split in ("train", "test"):
                assert datasets.load_dataset("my-org/tiny-pref", config, split=split).num_rows > 0
    """)
    env_endpoint = f"http://127.0.0.1:{_closed_port()}"
    pytester._monkeypatch.setenv("HF_ENDPOINT", env_endpoint)
    pytester._monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "outer"))
    result = pytester.runpytest_subprocess(mode, "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
