"""Plugin behaviour through pytester: fixtures, overrides, options, errors, xdist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

@pytest.fixture(autouse=True)
def _preload(preloaded_libraries: None) -> None:
    """In-process pytester runs need the heavy libraries imported beforehand (see conftest)."""


USE_LLAMA = """
def test_llama(tiny_llama):
    model, tokenizer, dataset = tiny_llama
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tiny_llama.config.num_key_value_heads < tiny_llama.config.num_attention_heads
    ids = tokenizer(dataset[0]["text"], return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4
"""


def test_builtin_fixture_with_no_manifest(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makepyfile(USE_LLAMA)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tinymodels: cache * (from PYTEST_TINYMODELS_CACHE)*", "*tiny models*", "tiny_llama *"])


def test_rootdir_manifest_adds_and_overrides(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures="""
        [fixtures.tiny_llama]
        model_type = "llama"
        config = { num_hidden_layers = 1 }

        [fixtures.my_gpt2]
        model_type = "gpt2"
        tokenizer = { vocab_size = 300 }
        dataset = { rows = 5 }
    """)
    pytester.makepyfile("""
        def test_override(tiny_llama):
            assert tiny_llama.config.num_hidden_layers == 1

        def test_added(my_gpt2):
            model, tokenizer, dataset = my_gpt2
            assert len(dataset) == 5
            assert model.config.vocab_size == len(tokenizer)
            assert len(tokenizer) <= 300 + 256 + 1  # byte-level alphabet may exceed the request

        def test_builtin_still_there(tiny_bert):
            assert tiny_bert.model.config.model_type == "bert"
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_manifest_option_and_ini(pytester: pytest.Pytester, cache_env: Path) -> None:
    manifest = pytester.path / "elsewhere" / "tiny.toml"
    manifest.parent.mkdir()
    manifest.write_text('[fixtures.custom_llama]\nmodel_type = "llama"\ndataset = { rows = 3 }\n')
    pytester.makepyfile("def test_c(custom_llama):\n    assert len(custom_llama.dataset) == 3\n")
    pytester.runpytest("--tiny-manifest", str(manifest)).assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ntiny_manifest = elsewhere/tiny.toml\n")
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ("[fixtures.tiny_x\nmodel_type='llama'", ["fixtures.toml", "invalid TOML"]),
        ("[fixtures.tiny_x]\nmodel_typo = 'llama'", ["fixtures.toml", "'tiny_x'", "'model_typo'", "did you mean 'model_type'"]),
        ("[fixtures.tiny_x]\nmodel_type = 'llama'\nconfig = { hidden_size = -3 }", ["'tiny_x'", "'config.hidden_size'", "positive integer"]),
        ("[fixtures.tiny_x]\nmodel_type = 'llama'\nconfig = { hidden_size = 30, num_attention_heads = 4 }",
         ["'tiny_x'", "config.num_attention_heads", "does not divide"]),
        ("[fixtures.'bad-name']\nmodel_type = 'llama'", ["'bad-name'", "not a valid Python identifier"]),
        ("[fixtures.tiny_x]\nmodel_type = 'llama'\ndtype = 'float8'", ["'tiny_x'", "'dtype'", "float32"]),
        ("[fixtures.tiny_x]\nmodel_type = 'llama'\ntokenizer = { vocab_size = '512' }", ["'tokenizer.vocab_size'", "integer"]),
    ],
)
def test_bad_manifest_is_a_usage_error(pytester: pytest.Pytester, cold_cache: Path, toml: str, fragments: list[str]) -> None:
    pytester.makefile(".toml", fixtures=toml)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in text
    assert not (cold_cache / "entries").exists() or not any((cold_cache / "entries").iterdir())


@pytest.mark.parametrize(
    ("table", "field", "fragment"),
    [
        ("model_type = 'llamma'", "model_type", "llama"),
        ("model_type = 'llama'\narchitecture = 'LlamaForNothing'", "architecture", "LlamaForNothing"),
        ("model_type = 'llama'\ntask = 'dance'", "task", "dance"),
    ],
)
def test_unknown_model_type_or_architecture(pytester: pytest.Pytester, cold_cache: Path, table: str, field: str, fragment: str) -> None:
    pytester.makefile(".toml", fixtures=f"[fixtures.tiny_x]\n{table}\n")
    pytester.makepyfile("def test_x(tiny_x):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "fixtures.toml" in text and "'tiny_x'" in text and field in text and fragment in text, text
    assert not (cold_cache / "entries").exists() or not any((cold_cache / "entries").iterdir())


def test_unused_bad_model_type_does_not_break_other_tests(pytester: pytest.Pytester, cold_cache: Path) -> None:
    """Model types are checked for the fixtures the selected tests use (checking needs transformers)."""
    pytester.makefile(".toml", fixtures="[fixtures.tiny_x]\nmodel_type = 'nope'\n")
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_tiny_rebuild_takes_no_value_and_rebuilds_once(pytester: pytest.Pytester, cold_cache: Path) -> None:
    pytester.makepyfile(test_a=USE_LLAMA, test_b=USE_LLAMA.replace("test_llama", "test_llama_again"))
    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(passed=2)
    first.stdout.re_match_lines([r"tiny_llama +built in"])
    second = pytester.runpytest("-p", "no:cacheprovider")
    second.stdout.re_match_lines([r"tiny_llama +reused"])
    # a path right after --tiny-rebuild stays a test path
    third = pytester.runpytest("-p", "no:cacheprovider", "--tiny-rebuild", "test_a.py")
    third.assert_outcomes(passed=1)
    third.stdout.re_match_lines([r"tiny_llama +built in", r"1 built .*, 0 reused"])
    entries = list((cold_cache / "entries").iterdir())
    assert len(entries) == 1


def test_collect_only_does_not_import_heavy_libraries(pytester: pytest.Pytester, cold_cache: Path) -> None:
    pytester.makepyfile("""
        import sys

        def test_plain():
            pass

        def test_no_heavy_imports():
            for name in ("torch", "transformers", "tokenizers", "datasets"):
                assert name not in sys.modules, name
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    pytester.makeconftest("""
        import json, sys

        def pytest_collection_finish(session):
            heavy = [m for m in ("torch", "transformers", "tokenizers", "datasets") if m in sys.modules]
            with open("heavy.json", "w") as fh:
                json.dump(heavy, fh)
    """)
    collect = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert collect.ret == 0
    assert json.loads((pytester.path / "heavy.json").read_text()) == []


def test_mutating_a_model_does_not_leak_into_other_tests(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makepyfile("""
        import torch

        def test_1_mutate(tiny_gpt2):
            model, tokenizer, _ = tiny_gpt2
            with torch.no_grad():
                for p in model.parameters():
                    p.zero_()
            model.resize_token_embeddings(len(tokenizer) + 7)
            tokenizer.add_tokens(["<brand_new>"])

        def test_2_untouched(tiny_gpt2):
            model, tokenizer, _ = tiny_gpt2
            assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
            assert "<brand_new>" not in tokenizer.get_vocab()
            assert any(p.abs().sum() > 0 for p in model.parameters())
    """)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_xdist_builds_each_entry_once_and_merges_summary(pytester: pytest.Pytester, cold_cache: Path) -> None:
    pytest.importorskip("xdist")
    tests = "\n".join(
        f"def test_{i}(tiny_llama, tiny_gpt2):\n    assert tiny_llama.model is not None\n" for i in range(6)
    )
    pytester.makepyfile(tests)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    result.stdout.re_match_lines([r"tiny_gpt2 +built in", r"tiny_llama +built in", r"2 built .*, 0 reused"])
    assert len(list((cold_cache / "entries").iterdir())) == 2
    rebuild = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--tiny-rebuild")
    rebuild.assert_outcomes(passed=6)
    rebuild.stdout.re_match_lines([r"2 built .*, 0 reused"])
    assert len(list((cold_cache / "entries").iterdir())) == 2
    recipes = [json.loads((e / "recipe.json").read_text()) for e in (cold_cache / "entries").iterdir()]
    assert sorted(r["architecture"] for r in recipes) == ["GPT2LMHeadModel", "LlamaForCausalLM"]


def test_cache_dir_precedence_shown_in_header(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.makeini(f"[pytest]\ntiny_cache_dir = {tmp_path / 'from-ini'}\n")
    monkeypatch.delenv("PYTEST_TINYMODELS_CACHE", raising=False)
    pytester.runpytest().stdout.fnmatch_lines([f"*cache {tmp_path / 'from-ini'} (from ini tiny_cache_dir)*"])
    monkeypatch.setenv("PYTEST_TINYMODELS_CACHE", str(tmp_path / "from-env"))
    pytester.runpytest().stdout.fnmatch_lines([f"*cache {tmp_path / 'from-env'} (from PYTEST_TINYMODELS_CACHE)*"])
    result = pytester.runpytest("--tiny-cache-dir", str(tmp_path / "from-cli"))
    result.stdout.fnmatch_lines([f"*cache {tmp_path / 'from-cli'} (from --tiny-cache-dir)*"])


def test_cuda_fixture_is_skipped_without_gpu(pytester: pytest.Pytester, cache_env: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    pytester.makepyfile("def test_gpu(tiny_llama):\n    pass\n")
    result = pytester.runpytest("--tiny-device", "cuda", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs CUDA*"])


def test_summary_reports_sizes(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makepyfile("def test_t5(tiny_t5):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    line = next(l for l in result.stdout.lines if l.startswith("tiny_t5 "))
    assert re.search(r"\d+(\.\d)? (KB|MB)", line), line


PARAM_MANIFEST = """
[fixtures.tiny_lm]
task = "causal-lm"
architectures = ["llama", "gpt2", "opt*"]
exclude = ["opt"]
"""


def test_parametrized_fixture_ids_filters_and_stable_order(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures=PARAM_MANIFEST)
    pytester.makepyfile("""
        def test_forward(tiny_lm):
            model, tokenizer, dataset = tiny_lm
            batch = tokenizer(dataset["text"][:2], padding=True, return_tensors="pt")
            assert model(**batch).logits.shape[-1] == len(tokenizer)
    """)
    collected = pytester.runpytest("--collect-only", "-q")
    ids = [l for l in collected.stdout.lines if "::" in l]
    assert ids == ["test_parametrized_fixture_ids_filters_and_stable_order.py::test_forward[gpt2]",
                   "test_parametrized_fixture_ids_filters_and_stable_order.py::test_forward[llama]"]
    pytester.runpytest("-k", "llama").assert_outcomes(passed=1, deselected=1)
    result = pytester.runpytest("--tiny-arch", "gpt*")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["tiny_lm[[]gpt2[]] *GPT2LMHeadModel*"])


def test_parametrized_fixture_under_xdist(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytest.importorskip("xdist")
    pytester.makefile(".toml", fixtures=PARAM_MANIFEST)
    pytester.makepyfile("def test_a(tiny_lm):\n    pass\n\ndef test_b(tiny_lm):\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_unbuildable_architecture_is_skipped_with_reason_or_fails_strict(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures="""
        [fixtures.tiny_lm]
        task = "causal-lm"
        architectures = ["gpt2", "llama"]
        config = { hidden_act = "no_such_activation", activation_function = "no_such_activation" }
    """)
    pytester.makepyfile("def test_x(tiny_lm):\n    pass\n")
    with_reason = pytester.runpytest("-rs")
    with_reason.assert_outcomes(skipped=2)
    with_reason.stdout.fnmatch_lines(["*tiny_lm[[]*[]] cannot be built*"])
    strict = pytester.runpytest("--tiny-strict")
    strict.assert_outcomes(errors=2)


def test_plain_fixture_build_failure_is_an_error_naming_the_fixture(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures="""
        [fixtures.tiny_bad]
        model_type = "llama"
        config = { hidden_act = "no_such_activation" }
    """)
    pytester.makepyfile("def test_x(tiny_bad):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*tiny_bad*"])


def test_tiny_arch_matching_nothing_is_a_usage_error_naming_close_matches(pytester: pytest.Pytester,
                                                                           cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures=PARAM_MANIFEST)
    pytester.makepyfile("def test_forward(tiny_lm):\n    pass\n")
    result = pytester.runpytest("--tiny-arch", "lama")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "--tiny-arch 'lama' matches no architecture of tiny_lm" in text and "llama" in text, text
    # one pattern of two matching nothing is a mistake too
    assert pytester.runpytest("--tiny-arch", "llama,gtp2").ret == pytest.ExitCode.USAGE_ERROR
    # a filter and selected tests that use no parametrized fixture: nothing to filter, no error
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.runpytest("--tiny-arch", "lama", "test_plain.py").assert_outcomes(passed=1)


def test_manifest_architectures_entry_matching_nothing_is_a_usage_error(pytester: pytest.Pytester,
                                                                         cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='[fixtures.tiny_lm]\ntask = "causal-lm"\narchitectures = ["gpt2", "lama"]\n')
    pytester.makepyfile("def test_forward(tiny_lm):\n    pass\n")
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "fixtures.toml" in text and "'tiny_lm'" in text and "'architectures'" in text and "llama" in text, text


def test_unknown_fixture_gets_the_closest_tiny_fixtures(pytester: pytest.Pytester, cache_env: Path) -> None:
    pytester.makefile(".toml", fixtures='[fixtures.my_gpt2]\nmodel_type = "gpt2"\n')
    pytester.makepyfile("""
        def test_typo(tiny_lama):
            pass

        def test_other_typo(my_gtp2):
            pass

        def test_not_ours(tmp_pth):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "*fixture 'tiny_lama' not found",
        "*pytest-tinymodels: did you mean 'tiny_llama'? (built-in defines: tiny_bert, tiny_gpt2, tiny_llama, tiny_llama_trained, tiny_t5;"
        " fixtures.toml defines: my_gpt2)",
        "*available fixtures:*",
    ])
    result.stdout.fnmatch_lines(["*fixture 'my_gtp2' not found", "*pytest-tinymodels: did you mean 'my_gpt2'?*"])
    text = result.stdout.str()
    assert text.count("pytest-tinymodels: did you mean") == 2, "a fixture far from every tiny one gets no suggestion"
