"""Config overrides are checked against the config classes (issue 12.3): a key the class (or its sub-configs)
does not know is a usage error with a "did you mean"; ``config_extra`` is the escape for deliberate extras."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_tinymodels.errors import ManifestError
from pytest_tinymodels.manifest import (
    check_config_overrides,
    checked_config_paths,
    config_key_tree,
    parse_manifest_text,
)


@pytest.fixture(scope="module")
def trees() -> dict[str, Any]:
    from pytest_tinymodels.build import shrink

    return {mt: config_key_tree(shrink.base_config(mt)) for mt in ("llama", "gpt2", "llava")}


def spec_of(text: str, name: str = "tiny_x"):
    return parse_manifest_text(text, "fixtures.toml")[name]


def test_key_tree_of_real_configs(trees: dict[str, Any]) -> None:
    llama, gpt2, llava = trees["llama"], trees["gpt2"], trees["llava"]
    assert {"hidden_size", "num_hidden_layers", "rope_parameters", "num_labels", "_attn_implementation"} <= set(llama)
    assert "hiden_size" not in llama
    assert {"n_embd", "hidden_size"} <= set(gpt2), "attribute_map names are known"
    assert isinstance(llava["text_config"], dict) and "num_hidden_layers" in llava["text_config"]
    assert isinstance(llava["vision_config"], dict) and "image_size" in llava["vision_config"]
    assert llama["rope_parameters"] is None, "a dict-valued attribute is not looked into"


def test_typo_is_an_error_naming_file_fixture_field_and_the_fix(trees: dict[str, Any]) -> None:
    spec = spec_of("[fixtures.tiny_x]\nmodel_type = 'llama'\nconfig = { hiden_size = 32 }\n")
    with pytest.raises(ManifestError) as info:
        check_config_overrides(spec, {"llama": trees["llama"]}, {"llama": "LlamaConfig"})
    text = str(info.value)
    assert info.value.field == "config.hiden_size" and info.value.fixture == "tiny_x"
    assert "fixtures.toml" in text and "LlamaConfig" in text and "did you mean 'hidden_size'" in text
    assert "config_extra" in text


def test_nested_sub_config_keys_are_checked(trees: dict[str, Any]) -> None:
    ok = spec_of("[fixtures.tiny_x]\nmodel_type = 'llava'\nconfig = { text_config = { num_hidden_layers = 1 } }\n")
    assert check_config_overrides(ok, {"llava": trees["llava"]})["llava"] == {"text_config": {"num_hidden_layers": 1}}
    bad = spec_of("[fixtures.tiny_x]\nmodel_type = 'llava'\nconfig = { text_config = { num_hiden_layers = 1 } }\n")
    with pytest.raises(ManifestError) as info:
        check_config_overrides(bad, {"llava": trees["llava"]})
    assert info.value.field == "config.text_config.num_hiden_layers"
    assert "did you mean 'num_hidden_layers'" in str(info.value)
    # a dict given to a known plain attribute is not looked into
    rope = spec_of("[fixtures.tiny_x]\nmodel_type = 'llama'\nconfig = { rope_parameters = { rope_type = 'default', x = 1 } }\n")
    check_config_overrides(rope, {"llama": trees["llama"]})


def test_config_extra_is_the_escape_and_is_merged_into_the_build_config(trees: dict[str, Any]) -> None:
    spec = spec_of("[fixtures.tiny_x]\nmodel_type = 'llama'\nconfig = { hidden_size = 32 }\n"
                   "config_extra = { my_flag = 1, text_config = { y = 2 } }\n")
    assert dict(spec.config) == {"hidden_size": 32, "my_flag": 1, "text_config": {"y": 2}}
    assert checked_config_paths(spec) == [("hidden_size",)]
    assert check_config_overrides(spec, {"llama": trees["llama"]})["llama"] == dict(spec.config)
    assert spec.build_key_fields()["config"]["my_flag"] == 1, "extras are part of what is built (and the key)"


def test_config_extra_and_config_setting_one_key_is_an_error() -> None:
    with pytest.raises(ManifestError) as info:
        spec_of("[fixtures.tiny_x]\nmodel_type = 'llama'\nconfig = { hidden_size = 32 }\nconfig_extra = { hidden_size = 16 }\n")
    assert info.value.field == "config_extra.hidden_size"
    with pytest.raises(ManifestError) as info:
        spec_of("[fixtures.tiny_x]\nmodel_type = 'llama'\nconfig_extra = 3\n")
    assert info.value.field == "config_extra"


def test_parametrized_keys_apply_where_known_and_fail_where_unknown_to_all(trees: dict[str, Any]) -> None:
    text = "[fixtures.tiny_x]\ntask = 'causal-lm'\narchitectures = ['gpt2', 'llama']\nconfig = {{ {} }}\n"
    both = {"gpt2": trees["gpt2"], "llama": trees["llama"]}
    spec = spec_of(text.format("n_embd = 32, num_hidden_layers = 1"))
    per_type = check_config_overrides(spec, both)
    assert per_type["gpt2"] == {"n_embd": 32, "num_hidden_layers": 1}
    assert per_type["llama"] == {"num_hidden_layers": 1}, "n_embd is GPT-2's name: left out for llama"
    with pytest.raises(ManifestError) as info:
        check_config_overrides(spec_of(text.format("n_emb = 32")), both)
    assert info.value.field == "config.n_emb" and "did you mean 'n_embd'" in str(info.value)
    assert "2 selected architectures" in str(info.value)


def test_session_checks_used_fixtures_and_remembers_the_key_trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_tinymodels.build import shrink
    from pytest_tinymodels.cache import Cache
    from pytest_tinymodels.manifest import load_manifest
    from pytest_tinymodels.session import TinySession

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text("[fixtures.good]\nmodel_type = 'gpt2'\nconfig = { n_layer = 1 }\n"
                        "[fixtures.bad]\nmodel_type = 'gpt2'\nconfig = { n_layers = 1 }\n"
                        "[fixtures.lm]\ntask = 'causal-lm'\narchitectures = ['gpt2', 'llama']\n"
                        "config = { n_embd = 32 }\n")
    (tmp_path / "cache").mkdir()
    session = TinySession(load_manifest(manifest), Cache(tmp_path / "cache"))
    assert session.variants("good")[0].spec.config == {"n_layer": 1}
    with pytest.raises(ManifestError) as info:
        session.variants("bad")
    assert info.value.field == "config.n_layers" and "'n_layer'" in str(info.value)
    configs = {v.id: dict(v.spec.config) for v in session.variants("lm")}
    assert configs == {"gpt2": {"n_embd": 32}, "llama": {}}
    assert list((tmp_path / "cache" / "memo").glob("config-keys-*.json"))

    def no_config(model_type: str) -> None:
        raise AssertionError("the key tree should come from the memo")

    monkeypatch.setattr(shrink, "base_config", no_config)
    again = TinySession(load_manifest(manifest), Cache(tmp_path / "cache"))
    with pytest.raises(ManifestError):
        again.variants("bad")
    assert again.variants("good")[0].spec.config == {"n_layer": 1}


def test_pytest_usage_error_and_extra_attribute(pytester: pytest.Pytester, cache_env: Path,
                                                preloaded_libraries: None) -> None:
    pytester.makefile(".toml", fixtures="""
        [fixtures.tiny_typo]
        model_type = "gpt2"
        config = { hiden_size = 32 }

        [fixtures.tiny_extra]
        model_type = "gpt2"
        config = { n_layer = 1 }
        config_extra = { my_flag = 7 }
    """)
    pytester.makepyfile(test_typo="def test_t(tiny_typo):\n    pass\n", test_extra="""
        def test_e(tiny_extra):
            assert tiny_extra.config.n_layer == 1
            assert tiny_extra.config.my_flag == 7
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "test_typo.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "fixtures.toml" in text and "'tiny_typo'" in text and "'config.hiden_size'" in text, text
    assert "did you mean 'hidden_size'" in text and "Traceback" not in text
    pytester.runpytest("-p", "no:cacheprovider", "test_extra.py").assert_outcomes(passed=1)


def test_cli_build_rejects_unknown_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_tinymodels.cli import main

    manifest = tmp_path / "fixtures.toml"
    manifest.write_text("[fixtures.tiny_typo]\nmodel_type = 'llama'\nconfig = { hiden_size = 32 }\n")
    assert main(["build", "tiny_typo", "--manifest", str(manifest), "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "'config.hiden_size'" in err and "did you mean 'hidden_size'" in err
    assert not (tmp_path / "c" / "entries").exists() or not list((tmp_path / "c" / "entries").iterdir())


def test_every_causal_lm_config_gives_a_key_tree(tmp_path: Path) -> None:
    """A parametrized "*" fixture with an override checks ~200 config classes, heterogeneous and composite
    ones included (a per-layer attribute refuses a global read); each yields a tree or is left unchecked."""
    from pytest_tinymodels.build import architectures
    from pytest_tinymodels.session import check_config_keys

    spec = spec_of("[fixtures.tiny_x]\ntask = 'causal-lm'\narchitectures = '*'\nconfig = { num_hidden_layers = 1 }\n")
    model_types = sorted({i.model_type for i in architectures.expand("causal-lm", "*", ())})
    (tmp_path / "cache").mkdir()
    per_type = check_config_keys(spec, model_types, tmp_path / "cache")
    assert len(per_type) >= 0.95 * len(model_types)
    kept = [mt for mt, config in per_type.items() if config.get("num_hidden_layers") == 1]
    assert "llama" in kept and len(kept) >= 0.8 * len(per_type)
    assert all(config in ({"num_hidden_layers": 1}, {}) for config in per_type.values())
