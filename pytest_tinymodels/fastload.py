"""Load a warm cache entry without ``from_pretrained``'s generic work, and check at build time that it is the same.

A cache entry's repo was written by ``save_pretrained`` of the transformers version in its cache key: one
``model.safetensors``, keys exactly the model's own.  ``from_pretrained`` must still resolve files, build the
checkpoint conversion table (~1,000 regexes on transformers 5.25, the first call in a process), plan devices,
initialise weights it then overwrites and look for hub kernels.  :func:`fast_load_model` does only what such a
repo needs:

1. the config through the class's own config class, ``dtype`` set as ``from_pretrained`` sets it;
2. the model built on CPU in ``from_pretrained``'s init contexts (target default dtype, no tying, registered
   patches) plus ``no_init_weights``: parameters are uninitialised storage, non-persistent buffers (rotary
   ``inv_freq``, BERT ``position_ids``...) are computed by ``__init__`` as usual;
3. ``safetensors.torch.load_file``, each tensor cast to the dtype ``from_pretrained`` gives it (the
   ``_keep_in_fp32_modules[_strict]`` plan, else the dtype the module created it in),
   ``load_state_dict(assign=True)``;
4. ``from_pretrained``'s finishing steps: symmetric ``tie_weights``, ``_is_hf_initialized`` on every loaded
   tensor, the guarded ``initialize_weights()`` (fills what nothing loaded), ``eval()``, the generation config.

It declines (returns None: the caller uses ``from_pretrained``) for sharded or ``.bin`` checkpoints, quantized
or remote-code configs, keys that do not match the module's state dict, and transformers versions without the
internals it relies on.  The build runs :func:`verify_fast_load` on every fresh entry and records the outcome
in ``recipe.json`` (``fast_load``); the loader takes the fast path only where that record says it gave the
same model (bit for bit), tokenizer and dataset as the generic loaders, for this :data:`FAST_LOAD_VERSION`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

#: Bumped whenever what this module loads may change: entries verified by another version take the slow path.
FAST_LOAD_VERSION = 3
#: The one weights file a fast-loadable repo has.
WEIGHTS_FILE = "model.safetensors"


def fast_load_model(repo: str | Path, class_name: str | None = None, *, dtype: Any = None,
                    device: str = "cpu") -> Any | None:
    """The model saved in ``repo`` (class ``class_name``, default the config's first architecture) in ``dtype``
    (a ``torch.dtype`` or its name; default ``torch.get_default_dtype()`` like ``from_pretrained``), in eval
    mode on ``device``; None where the fast path does not apply (:func:`fast_load_model_or_reason` says why)."""
    model = fast_load_model_or_reason(repo, class_name, dtype=dtype, device=device)
    return None if isinstance(model, str) else model


def fast_load_model_or_reason(repo: str | Path, class_name: str | None = None, *, dtype: Any = None,
                              device: str = "cpu") -> Any:
    """:func:`fast_load_model`, with a string saying why where it declines."""
    import contextlib

    import torch
    import transformers

    repo = Path(repo)
    weights = repo / WEIGHTS_FILE
    if not weights.is_file() or not (repo / "config.json").is_file():
        return f"no single {WEIGHTS_FILE} + config.json"
    config_dict = json.loads((repo / "config.json").read_text())
    if "quantization_config" in config_dict or "auto_map" in config_dict:
        return "quantized or remote-code config"
    class_name = class_name or (config_dict.get("architectures") or [None])[0]
    cls = getattr(transformers, class_name or "", None)
    if cls is None or not hasattr(cls, "config_class"):
        return f"no model class {class_name!r} in transformers"
    try:
        import safetensors.torch
        from transformers import initialization as tinit
        from transformers.core_model_loading import build_glob_alternation
        from transformers.modeling_utils import local_torch_dtype
        from transformers.utils.generic import ContextManagers

        no_init_weights = tinit.no_init_weights
        # transformers 5.0/5.1 tie in __init__ (no no_tie_weights yet): the symmetric tie_weights() after
        # loading re-ties what assign=True replaced; the build's comparison decides whether that is the same
        no_tie_weights = getattr(tinit, "no_tie_weights", contextlib.nullcontext)
    except (ImportError, AttributeError) as exc:  # a transformers without these internals: from_pretrained does it
        return f"this transformers lacks {getattr(exc, 'name', None) or exc}"
    try:  # transformers >= 5.2x: instance patches registered by the user, applied by from_pretrained too
        from transformers.monkey_patching import apply_patches, patch_output_recorders
    except ImportError:
        apply_patches, patch_output_recorders = contextlib.nullcontext, lambda model: None
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype is None:
        dtype = torch.get_default_dtype()

    config = cls.config_class.from_pretrained(str(repo))
    if getattr(config, "fusion_config", None):
        return "fusion_config (kernel fusions)"
    config.name_or_path = str(repo)
    config.dtype = dtype
    for key in getattr(config, "sub_configs", {}) or {}:
        if (sub := getattr(config, key, None)) is not None:
            sub.dtype = dtype
    # from_pretrained's init contexts (get_init_context) but on CPU, not meta: __init__ computes the
    # non-persistent buffers for real, and weight init is off (every parameter is loaded or tied)
    contexts = [local_torch_dtype(dtype, cls.__name__), no_tie_weights(), apply_patches(), no_init_weights()]
    with ContextManagers(contexts):
        model = cls(config)
        patch_output_recorders(model)

    state = safetensors.torch.load_file(str(weights))
    expected = model.state_dict(keep_vars=True)
    tied = dict(getattr(model, "all_tied_weights_keys", None) or {})
    missing = expected.keys() - state.keys()
    if state.keys() - expected.keys() or missing - tied.keys() - set(tied.values()):
        return "checkpoint keys are not the model's own (converted on load, e.g. per-expert MoE weights)"
    # {module pattern: torch.float32} for _keep_in_fp32_modules[_strict]; transformers 5.0/5.1 keep it as the
    # instance's dtype_plan, made in __init__ (from_pretrained applies it whatever the dtype)
    get_plan = getattr(model, "_get_dtype_plan", None)
    plan = get_plan(dtype) if get_plan is not None else dict(getattr(model, "dtype_plan", None) or {})
    plan_re = group_of = None
    if plan:
        plan_re, group_of, _ = build_glob_alternation(list(plan))
    for key, tensor in state.items():
        target = expected[key]
        if tensor.shape != target.shape:
            return f"{key}: checkpoint shape {tuple(tensor.shape)} != {tuple(target.shape)}"
        want = target.dtype
        if plan_re is not None and (match := plan_re.search(key)) is not None:
            want = plan[group_of[match.lastgroup]]
        if tensor.dtype != want:
            state[key] = tensor.to(want)
    model.load_state_dict(state, strict=False, assign=True)
    # from_pretrained's tying: symmetric (a checkpoint holding the target but not the source ties the other
    # way round); two present tensors stay as loaded
    model.tie_weights(missing_keys=set(missing), recompute_mapping=False)
    pairs = dict(model.all_tied_weights_keys)
    for key in missing:  # every weight the file lacks must now share storage with a loaded one
        other = pairs.get(key) or next((t for t, s in pairs.items() if s == key), None)
        if other is None or (model.get_parameter_or_buffer(key).data_ptr()
                             != model.get_parameter_or_buffer(other).data_ptr()):
            return f"{key} is not in the checkpoint and not tied"
    # from_pretrained's last init pass: loaded tensors carry `_is_hf_initialized`, then the guarded
    # initialize_weights() fills what is not flagged (non-persistent buffers, as from_pretrained computes them)
    # and flags every module, so a test's own initialize_weights() does not re-randomize the loaded weights
    for tensor in model.state_dict(keep_vars=True).values():
        tensor._is_hf_initialized = True
    model.initialize_weights()
    if callable(getattr(model, "set_use_kernels", None)):
        model.set_use_kernels(False)  # from_pretrained's own last step (use_kernels=False): records _use_kernels
    model.eval()
    if model.can_generate() and (repo / "generation_config.json").is_file():
        from transformers import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(str(repo))
    if str(device) != "cpu":
        model.to(device)
    return model


def resolved_tokenizer_class(repo: str | Path) -> str:
    """The class ``AutoTokenizer`` gives for ``repo`` (not always tokenizer_config.json's ``tokenizer_class``:
    on transformers 5.25 a Phi-3 or Mistral repo naming LlamaTokenizer loads as TokenizersBackend)."""
    import transformers

    return type(transformers.AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)).__name__


def fast_load_tokenizer(repo: str | Path, class_name: str) -> Any:
    """The tokenizer saved in ``repo`` through ``class_name`` (recorded at build time by
    :func:`resolved_tokenizer_class`): skips AutoTokenizer's config load and class resolution."""
    import transformers

    return getattr(transformers, class_name).from_pretrained(str(repo))


def fast_load_dataset(path: str | Path, workdir: str | Path | None = None) -> Any:
    """``datasets.load_from_disk(path, keep_in_memory=False)`` of a single-file ``Dataset`` without fsspec, the
    existence checks and the thread pool (same table, info, split, fingerprint, format).  With ``workdir``, the
    files are hard-linked (copied across filesystems) there first, as :func:`build.datasets.load_dataset_dir`."""
    import datasets
    from datasets.table import MemoryMappedTable

    path = Path(path)
    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        for src in path.iterdir():
            if src.is_file():
                try:
                    os.link(src, workdir / src.name)
                except OSError:
                    shutil.copyfile(src, workdir / src.name)
        path = workdir
    state = json.loads((path / "state.json").read_text())
    files = state["_data_files"]
    if len(files) != 1:
        return datasets.load_from_disk(str(path), keep_in_memory=False)
    info = datasets.DatasetInfo.from_dict(json.loads((path / "dataset_info.json").read_text()))
    split = state["_split"]
    dataset = datasets.Dataset(arrow_table=MemoryMappedTable.from_file(str(path / files[0]["filename"])), info=info,
                               split=datasets.Split(split) if split is not None else None,
                               fingerprint=state["_fingerprint"])
    # load_from_disk's own call: with_format() is a fingerprinted transform (the fingerprint hashes its arguments)
    return dataset.with_format(type=state["_format_type"], format_kwargs=state["_format_kwargs"],
                               columns=state["_format_columns"], output_all_columns=state["_output_all_columns"])


# -- verification ----------------------------------------------------------------------------------------------
def _same_tensor(a: Any, b: Any) -> bool:
    import torch

    if a.dtype != b.dtype or a.shape != b.shape or a.device != b.device:
        return False
    if a.is_floating_point() or a.is_complex():
        return bool(torch.equal(a, b) or (torch.isnan(a).any() and torch.equal(torch.isnan(a), torch.isnan(b))
                                          and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))))
    return bool(torch.equal(a, b))


def _storage_groups(model: Any) -> set[frozenset[str]]:
    """Parameters and buffers grouped by shared storage (tied weights): the partition, by name."""
    groups: dict[tuple[int, int], set[str]] = {}
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for name, tensor in named:
        if tensor.numel():
            groups.setdefault((tensor.data_ptr(), tensor.numel()), set()).add(name)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


_ATOMS = (str, int, float, bool, type(None))


def _plain_attributes(module: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items() if type(v) in _ATOMS and k != "_is_hf_initialized"}


def _tensors(value: Any) -> list[Any]:
    """The tensors of a model output (a ModelOutput, tuple, dict...), in order."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def model_differences(reference: Any, candidate: Any, inputs: dict[str, Any] | None = None) -> list[str]:
    """How ``candidate`` differs from ``reference`` (empty: the same model): class, every parameter and buffer
    (persistent or not) bit for bit with its dtype, shared storage (tied weights), ``requires_grad``, the
    ``_is_hf_initialized`` flags, plain module attributes, training flag, attention implementation, config and
    generation config, and with ``inputs`` every tensor of a forward pass."""
    import torch

    bad: list[str] = []
    if type(reference) is not type(candidate):
        return [f"class {type(candidate).__name__} != {type(reference).__name__}"]
    ref_t = {**dict(reference.named_parameters(remove_duplicate=False)),
             **dict(reference.named_buffers(remove_duplicate=False))}
    can_t = {**dict(candidate.named_parameters(remove_duplicate=False)),
             **dict(candidate.named_buffers(remove_duplicate=False))}
    if ref_t.keys() != can_t.keys():
        bad.append(f"tensor names differ: {sorted(ref_t.keys() ^ can_t.keys())[:5]}")
    for name in sorted(ref_t.keys() & can_t.keys()):
        a, b = ref_t[name], can_t[name]
        if not _same_tensor(a, b):
            bad.append(f"{name}: {b.dtype} {tuple(b.shape)} differs from {a.dtype} {tuple(a.shape)}")
        elif isinstance(a, torch.nn.Parameter) != isinstance(b, torch.nn.Parameter) or a.requires_grad != b.requires_grad:
            bad.append(f"{name}: parameter / requires_grad differs")
        elif bool(getattr(a, "_is_hf_initialized", False)) != bool(getattr(b, "_is_hf_initialized", False)):
            bad.append(f"{name}: _is_hf_initialized differs")
    if _storage_groups(reference) != _storage_groups(candidate):
        bad.append("shared (tied) tensors differ")
    ref_m, can_m = dict(reference.named_modules()), dict(candidate.named_modules())
    if ref_m.keys() != can_m.keys():
        bad.append("module tree differs")
    else:
        for name, module in ref_m.items():
            if type(module) is not type(can_m[name]) or _plain_attributes(module) != _plain_attributes(can_m[name]):
                bad.append(f"module {name or '<root>'}: class or attributes differ")
            elif bool(getattr(module, "_is_hf_initialized", False)) != bool(getattr(can_m[name], "_is_hf_initialized", False)):
                bad.append(f"module {name or '<root>'}: _is_hf_initialized differs")
    if reference.config.to_dict() != candidate.config.to_dict():
        bad.append("config differs")
    if getattr(reference.config, "_attn_implementation", None) != getattr(candidate.config, "_attn_implementation", None):
        bad.append("attention implementation differs")
    gen_r, gen_c = getattr(reference, "generation_config", None), getattr(candidate, "generation_config", None)
    if (gen_r is None) != (gen_c is None) or (gen_r is not None and gen_r.to_dict() != gen_c.to_dict()):
        bad.append("generation config differs")
    if inputs is not None and not bad:
        outs = []
        for model in (reference, candidate):
            torch.manual_seed(0)
            with torch.no_grad():
                outs.append(_tensors(model(**inputs)))
        if len(outs[0]) != len(outs[1]) or not all(_same_tensor(a, b) for a, b in zip(*outs)):
            bad.append("forward outputs differ")
    return bad


def tokenizer_differences(reference: Any, candidate: Any, texts: list[str]) -> list[str]:
    """How ``candidate`` differs from ``reference``: class, vocabulary, special tokens, chat template, init
    arguments, and the encodings (with padding) and decodings of ``texts``."""
    bad = []
    if type(reference) is not type(candidate):
        return [f"class {type(candidate).__name__} != {type(reference).__name__}"]
    checks = {
        "vocabulary": lambda t: t.get_vocab(),
        "special tokens": lambda t: (t.all_special_tokens, t.all_special_ids, t.padding_side, t.truncation_side,
                                     t.model_max_length),
        "chat template": lambda t: getattr(t, "chat_template", None),
        "init arguments": lambda t: repr(sorted(t.init_kwargs.items(), key=lambda kv: kv[0])),
        "encodings": lambda t: [t(text)["input_ids"] for text in texts],
        "decodings": lambda t: [t.decode(t(text)["input_ids"]) for text in texts],
    }
    for what, get in checks.items():
        if get(reference) != get(candidate):
            bad.append(f"{what} differ")
    return bad


def dataset_differences(reference: Any, candidate: Any) -> list[str]:
    """How ``candidate`` differs from ``reference`` (two ``datasets.Dataset``): data, features, info, split,
    fingerprint, format."""
    bad = []
    if type(reference) is not type(candidate):
        return ["class differs"]
    if not reference.data.table.equals(candidate.data.table):
        bad.append("data differs")
    for what in ("features", "info", "split", "_fingerprint", "format"):
        if getattr(reference, what) != getattr(candidate, what):
            bad.append(f"{what} differs")
    return bad


def verify_fast_load(repo: Path, class_name: str, dtype: str, *, dataset_dir: Path | None = None,
                     inputs_for: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Compare the fast loaders with the generic ones on a freshly built entry; the ``fast_load`` record of
    ``recipe.json``: ``{"version", "dtype", "model": bool, "tokenizer": class name or None, "dataset": bool}``
    plus ``"declined"`` (why a part takes the generic path).  ``inputs_for(model)`` gives forward inputs (the
    outputs are compared too); nothing raised here fails a build."""
    import torch
    import transformers

    record: dict[str, Any] = {"version": FAST_LOAD_VERSION, "dtype": dtype, "model": False, "tokenizer": None,
                              "dataset": False}
    declined: dict[str, str] = {}
    try:
        cls = getattr(transformers, class_name)
        torch_dtype = getattr(torch, dtype)
        reference = cls.from_pretrained(str(repo), dtype=torch_dtype, use_safetensors=True, trust_remote_code=False,
                                        use_kernels=False)
        candidate = fast_load_model_or_reason(repo, class_name, dtype=torch_dtype)
        if isinstance(candidate, str):
            declined["model"] = candidate
        else:
            inputs = None
            if inputs_for is not None:
                try:
                    inputs = inputs_for(reference)
                except Exception:  # noqa: BLE001 - no inputs: the tensors alone are compared
                    inputs = None
            if inputs is None:
                declined["model"] = "no forward inputs to compare"
            else:
                bad = model_differences(reference, candidate, inputs)
                record["model"] = not bad
                if bad:
                    declined["model"] = "; ".join(bad[:3])
    except Exception as exc:  # noqa: BLE001 - a failed check means the generic path, never a failed build
        declined["model"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if (repo / "tokenizer_config.json").is_file() or (repo / "tokenizer.json").is_file():
        try:
            auto = transformers.AutoTokenizer.from_pretrained(str(repo), trust_remote_code=False)
            name = type(auto).__name__
            texts = ["Hello world, tiny models!", "  two  spaces\nand a new line 123"]
            bad = tokenizer_differences(auto, fast_load_tokenizer(repo, name), texts)
            if bad:
                declined["tokenizer"] = "; ".join(bad[:3])
            else:
                record["tokenizer"] = name
        except Exception as exc:  # noqa: BLE001
            declined["tokenizer"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if dataset_dir is not None and (dataset_dir / "state.json").is_file():
        try:
            import datasets

            bad = dataset_differences(datasets.load_from_disk(str(dataset_dir), keep_in_memory=False),
                                      fast_load_dataset(dataset_dir))
            record["dataset"] = not bad
            if bad:
                declined["dataset"] = "; ".join(bad)
        except Exception as exc:  # noqa: BLE001
            declined["dataset"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if declined:
        record["declined"] = declined
    return record


def usable(recipe: dict[str, Any], dtype: str) -> dict[str, Any]:
    """The recipe's ``fast_load`` record where it applies to a load in ``dtype`` with this module, else ``{}``."""
    record = recipe.get("fast_load")
    if not isinstance(record, dict) or record.get("version") != FAST_LOAD_VERSION or record.get("dtype") != dtype:
        return {}
    return record
