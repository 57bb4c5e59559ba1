"""Manifest parsing: unit tests, hypothesis fuzzing, and bad manifests through pytest.

Every bad input must give a ManifestError naming the file (and the field, except for TOML syntax
errors, which name the line): never another exception, nothing written anywhere, and fixture
names never become paths (cache keys are hashes of what is built).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_tinymodels.build import key_fields
from pytest_tinymodels.cache import Cache, cache_key
from pytest_tinymodels.errors import ManifestError
from pytest_tinymodels.manifest import (
    DEFAULT_KEYS,
    FIXTURE_KEYS,
    FixtureSpec,
    load_manifest,
    parse_manifest_file,
    parse_manifest_text,
)

PATH = Path("/project/fixtures.toml")


# -- a write detector: audit events of anything that would create, change or delete a file ----------
_WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate",
                 "os.chmod", "os.chown", "shutil.rmtree", "shutil.move", "shutil.copyfile", "os.utime"}
_watch = threading.local()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not getattr(_watch, "on", False):
        return
    if event in _WRITE_EVENTS:
        _watch.writes.append((event, args[:2]))
    elif event == "open" and len(args) >= 2 and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
        _watch.writes.append((event, args[:2]))
    elif event == "open" and len(args) >= 3 and isinstance(args[2], int) and args[2] & 0o3 != 0:  # os.open for writing
        _watch.writes.append((event, args[:3]))


sys.addaudithook(_audit)


class NoWrites:
    """Context manager: fails if anything in this thread creates, changes or deletes a path."""

    def __enter__(self) -> "NoWrites":
        _watch.on, _watch.writes = True, []
        return self

    def __exit__(self, *exc: object) -> None:
        _watch.on = False
        assert _watch.writes == [], f"the manifest parser touched the file system: {_watch.writes}"


def parse(text: str) -> dict[str, FixtureSpec]:
    with NoWrites():
        return parse_manifest_text(text, PATH)


def error_of(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse(text)
    assert info.value.path == PATH
    return info.value


# -- unit tests ----------------------------------------------------------------------------------
def test_builtin_manifest_is_valid() -> None:
    manifest = load_manifest()
    assert {"tiny_llama", "tiny_gpt2", "tiny_bert", "tiny_t5"} <= set(manifest.names())


def test_valid_fixture_with_defaults() -> None:
    specs = parse("""
        [defaults]
        seed = 3
        config = { num_hidden_layers = 1 }
        tokenizer = { vocab_size = 300 }

        [fixtures.my_llama]
        model_type = "llama"
        config = { hidden_size = 32, num_attention_heads = 4, rope_scaling = { type = "linear", factor = 2.0 } }
        dataset = { rows = 5 }
    """.replace("\n        ", "\n"))
    spec = specs["my_llama"]
    assert spec.seed == 3 and spec.tokenizer["vocab_size"] == 300 and spec.dataset["rows"] == 5
    assert dict(spec.config) == {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 4,
                                 "rope_scaling": {"type": "linear", "factor": 2.0}}


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("[fixtures.a]\nmodel_type='llama'\n[fixtures.a]\nseed=1", "fixtures.a", "declared twice"),
        ("[fixtures.a]\nmodel_type='llama'\nmodel_type='gpt2'", "(duplicate key)", "set twice"),
        ("[fixtures]\na=1\n[fixtures.a]\n", "(duplicate key)", "set twice"),
        ("[fixtures.a]\nmodel_type=1", "model_type", "must be a string"),
        ("[fixtures.a]\nmodel_typ='llama'", "model_typ", "did you mean 'model_type'"),
        ("[fixtures.a]\nmodel_type='llama'\nseed=true", "seed", "must be an integer"),
        ("[fixtures.a]\nmodel_type='llama'\nseed=-1", "seed", "between 0 and 2**32-1"),
        ("[fixtures.a]\nmodel_type='llama'\nseed=99999999999999999999999", "seed", "between 0"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={hidden_size=0}", "config.hidden_size", "positive integer"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={hidden_size=10000000}", "config.hidden_size", "not tiny"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={hidden_size=30,num_attention_heads=4}", "config.num_attention_heads", "does not divide"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={num_attention_heads=4,num_key_value_heads=8}", "config.num_key_value_heads", "exceeds"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={num_local_experts=2,num_experts_per_tok=3}", "config.num_experts_per_tok", "exceeds"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={rope_theta=nan}", "config.rope_theta", "finite"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={rope_theta=-inf}", "config.rope_theta", "finite"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={layer_types=[1.0, nan]}", "config.layer_types[1]", "finite"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={x=[{y=inf}]}", "config.x[0].y", "finite"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={pad=99999999999999999999}", "config.pad", "64 bits"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={when=1979-05-27}", "config.when", "got date"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={'a.b'=1}", "config.a.b", "identifiers"),
        ("[fixtures.a]\nmodel_type='llama'\ntokenizer={vocab_size=1}", "tokenizer.vocab_size", "between 2"),
        ("[fixtures.a]\nmodel_type='llama'\ntokenizer={vocab_size=99999999999999999999}", "tokenizer.vocab_size", "between 2"),
        ("[fixtures.a]\nmodel_type='llama'\ntokenizer={model_max_length=0}", "tokenizer.model_max_length", "between 1"),
        ("[fixtures.a]\nmodel_type='llama'\ntokenizer={method='magic'}", "tokenizer.method", "not one of"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={per_layer_config={x={head_dim=2}}}", "config.per_layer_config.x",
         "layer indices"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={per_layer_config={'1'=3}}", "config.per_layer_config.1",
         "must be a table"),
        ("[fixtures.a]\nmodel_type='llama'\nconfig={per_layer_config={'1'={head_dim=0}}}",
         "config.per_layer_config.1.head_dim", "positive integer"),
        ("[fixtures.a]\nmodel_type='llama'\nsize={hiden=8}", "size.hiden", "did you mean 'hidden'"),
        ("[fixtures.a]\nmodel_type='llama'\nsize={hidden=0}", "size.hidden", "positive integer"),
        ("[fixtures.a]\nmodel_type='llama'\nsize={layers=true}", "size.layers", "positive integer"),
        ("[fixtures.a]\nmodel_type='llama'\nsize=8", "size", "must be a table"),
        ("[defaults]\nsize={heads=1.5}\n[fixtures.a]\nmodel_type='llama'", "size.heads", "positive integer"),
        ("[fixtures.a]\nmodel_type='llama'\ndataset={rows=0}", "dataset.rows", "between 1"),
        ("[fixtures.a]\nmodel_type='llama'\ndataset={max_chars=99999999999}", "dataset.min_chars", "max_chars"),
        ("[fixtures.a]\nmodel_type='llama'\ndataset={seed=-5}", "dataset.seed", "between 0"),
        ("[fixtures.a]\nmodel_type='llama'\ndtype='float8'", "dtype", "not one of"),
        ("[fixtures.a]\nmodel_type='llama'\ndevice='tpu'", "device", "not one of"),
        ("[fixtures.a]\ndescription='nothing'", "model_type", "nothing about what to build"),
        ("[fixtures.a]\nmodel_type='  '", "model_type", "must not be empty"),
        ("[fixtures.a]\ndownload='not a repo'", "download", "not a hub repo id"),
        ("[fixtures.a]\ndownload='org/name\\n'", "download", "not a hub repo id"),
        ("[fixtures.a]\nmodel_type='llama'\nhub_id='../../etc'", "hub_id", "not a hub repo id"),
        ("[fixtures.a]\nmodel_type='llama'\nhub_id='org/..'", "hub_id", "not a hub repo id"),
        ("[fixtures.a]\narchitectures=[]\ntask='causal-lm'", "architectures", "must not be empty"),
        ("[fixtures.a]\narchitectures='*'", "task", "needs a 'task'"),
        ("[fixtures.a]\nmodel_type='llama'\nexclude=['gpt2']", "exclude", "only applies"),
        ("[defaults]\nconfig=5\n[fixtures.a]\nmodel_type='llama'", "defaults.config", "must be a table"),
        ("[defaults]\ntokenizer='x'\n[fixtures.a]\nmodel_type='llama'", "defaults.tokenizer", "must be a table"),
        ("[defaults]\nseed='x'", "defaults.seed", "must be an integer"),
        ("[defaults]\nbogus=1", "defaults.bogus", "unknown key"),
        ("defaults=3", "defaults", "must be a table"),
        ("fixtures=[1]", "fixtures", "must be a table"),
        ("[fixtures]\na=1", "fixtures.a", "must be a table"),
        ("[fixturez.a]\nmodel_type='llama'", "fixturez", "did you mean 'fixtures'"),
    ],
)
def test_bad_values_name_file_and_field(text: str, field: str, fragment: str) -> None:
    exc = error_of(text)
    assert exc.field == field, str(exc)
    assert fragment in str(exc) and str(PATH) in str(exc)


@pytest.mark.parametrize("depth", [50, 400, 3000, 20000])
def test_deep_nesting_is_accepted_or_a_manifest_error(depth: int) -> None:
    text = "[fixtures.a]\nmodel_type='llama'\nconfig={x=" + "[" * depth + "]" * depth + "}"
    try:
        specs = parse(text)
    except ManifestError as exc:
        assert depth > 400 and "nested too deeply" in str(exc) and exc.path == PATH
    else:
        assert depth <= 400 and "x" in specs["a"].config


@pytest.mark.parametrize(
    "name",
    ["bad-name", "../evil", "a/b", "a\\\\b", "..", ".", "", "tiny llama", "tiny\\n", "class", "_private", "1st",
     "é", "a.b", "/abs", "~root", "nul\\u0000", "x" * 3 + "/../" + "y"],
)
def test_fixture_names_that_are_not_identifiers_are_rejected(name: str) -> None:
    exc = error_of(f'[fixtures."{name}"]\nmodel_type = "llama"\n')
    assert exc.field == "name" and exc.fixture is not None


def test_invalid_toml_names_file_and_line() -> None:
    exc = error_of('[fixtures.a]\nmodel_type = "llama\n')
    assert "invalid TOML" in str(exc) and "line 2" in str(exc) and str(PATH) in str(exc)


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[fixtures.a]\nmodel_type = '\xff\xfe'\n")
    with pytest.raises(ManifestError, match="cannot read manifest") as info:
        parse_manifest_file(bad)
    assert info.value.path == bad
    with pytest.raises(ManifestError, match="not found") as info:
        parse_manifest_file(tmp_path / "missing.toml")
    assert info.value.path == tmp_path / "missing.toml"
    with pytest.raises(ManifestError, match="cannot read") as info:
        parse_manifest_file(tmp_path)  # a directory
    assert info.value.path == tmp_path


def test_names_do_not_reach_the_cache_key() -> None:
    specs = parse("[fixtures.one]\nmodel_type='llama'\n[fixtures.two]\nmodel_type='llama'\n")
    k1, k2 = cache_key(key_fields(specs["one"])), cache_key(key_fields(specs["two"]))
    assert k1 == k2 and re.fullmatch(r"[0-9a-f]{24}", k1)


# -- hypothesis fuzzing --------------------------------------------------------------------------
def toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_str(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_document(doc: dict[str, Any]) -> str:
    lines = []
    if "defaults" in doc:
        lines.append("[defaults]")
        lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in doc["defaults"].items()]
    for name, table in doc.get("fixtures", {}).items():
        lines.append(f"[fixtures.{toml_str(name)}]")
        lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


text_ = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=16)
big_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, 1, -1, 2, 4, 8, 32, 2**31, 2**32, 2**63 - 1, 2**63, 10**30]))
scalars = st.one_of(
    big_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    text_,
    st.sampled_from(["llama", "gpt2", "bert", "causal-lm", "*", "float32", "cpu", "org/name", "../x", "a/b", ""]),
    st.dates(),
    st.datetimes(),
    st.times(),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(text_, inner, max_size=4)), max_leaves=12)
config_keys = st.one_of(st.sampled_from(["hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers",
                                          "intermediate_size", "vocab_size", "head_dim", "rope_theta", "n_embd", "n_head",
                                          "num_experts_per_tok", "num_local_experts", "rope_scaling"]), text_)
known = {
    "config": st.dictionaries(config_keys, st.one_of(big_ints, values), max_size=4),
    "tokenizer": st.dictionaries(st.sampled_from(["vocab_size", "method", "model_max_length", "bogus"]), values, max_size=3),
    "dataset": st.dictionaries(st.sampled_from(["rows", "min_chars", "max_chars", "seed", "bogus"]), values, max_size=3),
}
fixture_keys = st.one_of(st.sampled_from(list(FIXTURE_KEYS)), st.sampled_from(["config", "tokenizer", "dataset"]), text_)
fixture_names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    st.sampled_from(["../evil", "a/b", "a\\b", "..", "", "class", "tiny\n", "_x", "tiny_llama", "x/../y"]),
    text_,
)


@st.composite
def tables(draw: Any, keys: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Random keys and values; most start from a valid ``base`` so validation gets past the first check."""
    out: dict[str, Any] = dict(base) if base and draw(st.integers(0, 9)) < 8 else {}
    for key in draw(st.lists(keys, max_size=3, unique=True)):
        out[key] = draw(known[key]) if key in known and draw(st.booleans()) else draw(values)
    return out


documents = st.fixed_dictionaries(
    {"fixtures": st.dictionaries(fixture_names, tables(fixture_keys, {"model_type": "llama"}), max_size=3)},
    optional={"defaults": tables(st.one_of(st.sampled_from(list(DEFAULT_KEYS)), st.sampled_from(list(DEFAULT_KEYS)), text_))},
)


def check_outcome(text: str, cache_root: Path) -> None:
    try:
        specs = parse(text)
    except ManifestError as exc:
        assert exc.path == PATH
        assert exc.field is not None or str(exc).startswith(f"{PATH}: invalid TOML"), str(exc)
        assert str(PATH) in str(exc)
        return
    cache = Cache(cache_root)
    for name, spec in specs.items():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and spec.name == name
        fields = key_fields(spec)
        json.dumps(fields, allow_nan=False)  # plain JSON: no NaN, no dates, no objects
        key = cache_key(fields)
        assert re.fullmatch(r"[0-9a-f]{24}", key)
        assert cache.entry_dir(key).parent == cache_root / "entries"
        assert cache.entry_dir(key).name == key  # the fixture name never becomes a path


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_fuzz_structured_manifests(doc: dict[str, Any], tmp_path: Path) -> None:
    check_outcome(toml_document(doc), tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200),
                      st.from_regex(r"\[(fixtures|defaults)(\.[a-z\"./ ]{0,8}){0,2}\]\n[a-z_]{1,10} ?= ?.{0,20}", fullmatch=True)))
def test_fuzz_arbitrary_text(text: str, tmp_path: Path) -> None:
    check_outcome(text, tmp_path / "cache")


# -- through pytest: a UsageError naming file and field, nothing in the cache ----------------------
@pytest.fixture
def _preload(preloaded_libraries: None) -> None:
    """In-process pytester runs need the heavy libraries imported beforehand (see conftest)."""


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ("[fixtures.tiny_x]\nmodel_type='llama'\n[fixtures.tiny_x]\nseed=1", ["declared twice", "'fixtures.tiny_x'"]),
        ("[fixtures.tiny_x]\nmodel_type='llama'\nconfig={rope_theta=nan}", ["'tiny_x'", "'config.rope_theta'", "finite"]),
        ("[fixtures.tiny_x]\nmodel_type='llama'\nseed=18446744073709551616", ["'tiny_x'", "'seed'"]),
        ("[fixtures.'../evil']\nmodel_type='llama'", ["'../evil'", "field 'name'"]),
        ("[fixtures.'a/b']\nmodel_type='llama'", ["'a/b'", "field 'name'"]),
        ("[defaults]\nconfig=5\n[fixtures.tiny_x]\nmodel_type='llama'", ["'defaults.config'"]),
        ("[fixtures.tiny_x]\nmodel_type='llama'\nconfig={x=" + "[" * 2000 + "]" * 2000 + "}", ["nested too deeply"]),
        ("[fixtures.tiny_x]\nmodel_type='llama'\nconfig={when=1979-05-27T00:00:00Z}", ["'config.when'"]),
    ],
)
def test_bad_manifest_through_pytest(pytester: pytest.Pytester, cold_cache: Path, _preload: None,
                                     toml: str, fragments: list[str]) -> None:
    pytester.makefile(".toml", fixtures=toml)
    pytester.makepyfile("def test_nothing():\n    pass\n")
    before = sorted(p.name for p in pytester.path.iterdir())
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "fixtures.toml" in text and "pytest-tinymodels" in text, text
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in text
    assert not cold_cache.exists()
    assert sorted(p.name for p in pytester.path.iterdir()) == before


# -- the [hub] table (validated by hub.registry.load_hub_registry when hub ids are served) --------------
repo_ids = st.one_of(st.sampled_from(["org/tiny-llama", "org/name", "a/b", "org/..", "../x", "noslash", "org/x\n", "o/x/y", ""]),
                     st.from_regex(r"[a-z]{1,5}/[a-z.-]{1,8}", fullmatch=True), text_)
hub_values = st.one_of(
    st.sampled_from(["LlamaForCausalLM", "gpt2", "tiny_llama", "NoSuchModel", "", "  "]),
    st.fixed_dictionaries({}, optional={"model_type": st.sampled_from(["llama", "bert", "nope", ""]) | values,
                                        "config": known["config"], "tokenizer": known["tokenizer"],
                                        "architectures": values, "hub_id": values}),
    values,
)
hub_tables = st.fixed_dictionaries({}, optional={
    "ids": st.dictionaries(repo_ids, hub_values, max_size=3) | values,
    "datasets": st.dictionaries(repo_ids, hub_values, max_size=2) | values,
    "rules": st.lists(st.sampled_from(["myorg/tiny-{arch}", "{arch}", "org/{arch}-{arch}", "x/y", ""]) | text_, max_size=3) | values,
    "builtin": values,
}) | st.dictionaries(text_, values, max_size=2) | values


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(hub=hub_tables, fixtures=st.dictionaries(fixture_names, tables(fixture_keys, {"model_type": "llama"}), max_size=2))
def test_fuzz_hub_table_gives_only_manifest_errors(tmp_path: Path, preloaded_libraries: None, hub: Any,
                                                   fixtures: dict[str, Any]) -> None:
    from pytest_tinymodels.hub.registry import load_hub_registry

    path = tmp_path / "fixtures.toml"
    text = toml_document({"fixtures": fixtures})
    if isinstance(hub, dict):
        text += "[hub]\n" + "".join(f"{toml_str(k)} = {toml_value(v)}\n" for k, v in hub.items())
    else:  # top-level key: before any table header
        text = f"hub = {toml_value(hub)}\n" + text
    path.write_text(text, encoding="utf-8")
    try:
        with NoWrites():
            load_hub_registry(load_manifest(path))
    except ManifestError as exc:
        assert exc.path is not None and str(exc.path) in str(exc), str(exc)
        if exc.path == path and not str(exc).startswith(f"{path}: invalid TOML"):
            assert exc.field is not None, str(exc)


# -- the parsed-TOML memo in the cache root ---------------------------------------------------------
def test_manifest_memo_skips_the_toml_parser_and_follows_edits(tmp_path: Path) -> None:
    import os
    import subprocess
    import time

    root = tmp_path / "cache"
    root.mkdir()
    manifest = tmp_path / "fixtures.toml"
    manifest.write_text('[fixtures.tiny_a]\nmodel_type = "gpt2"\nconfig = { n_embd = 32, ratio = 1.5 }\n')
    past = time.time_ns() - 60 * 10**9
    os.utime(manifest, ns=(past, past))
    first = load_manifest(manifest, memo_dir=root)
    assert sorted(p.name for p in (root / "memo").iterdir() if p.name.startswith("manifest-")) != []
    probe = (
        "import sys, json\n"
        "from pytest_tinymodels.manifest import load_manifest\n"
        f"m = load_manifest({str(manifest)!r}, memo_dir=__import__('pathlib').Path({str(root)!r}))\n"
        "print(json.dumps({'tomllib': 'tomllib' in sys.modules, 'config': dict(m['tiny_a'].config)}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert out == {"tomllib": False, "config": {"n_embd": 32, "ratio": 1.5}}
    assert first["tiny_a"].config == out["config"] and isinstance(first["tiny_a"].config["ratio"], float)
    # an edit is read (the mtime moved), and errors are reported as without the memo
    manifest.write_text('[fixtures.tiny_a]\nmodel_type = "llama"\n')
    assert load_manifest(manifest, memo_dir=root)["tiny_a"].model_type == "llama"
    manifest.write_text('[fixtures.tiny_a]\nmodel_type = "llama"\nseed = "one"\n')
    with pytest.raises(ManifestError, match="seed") as memo_err:
        load_manifest(manifest, memo_dir=root)
    with pytest.raises(ManifestError, match="seed") as plain_err:
        load_manifest(manifest)
    assert str(memo_err.value) == str(plain_err.value)
    manifest.write_text('[fixtures.tiny_a\n')
    with pytest.raises(ManifestError, match="invalid TOML"):
        load_manifest(manifest, memo_dir=root)
    # a cache root that does not exist yet is not created by a manifest read
    load_manifest(None, memo_dir=tmp_path / "no-cache-yet")
    assert not (tmp_path / "no-cache-yet").exists()
