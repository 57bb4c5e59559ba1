"""Repo directories the tiny hub writes beside cache entries: library layouts, LoRA adapters, dataset
repos with named configs. Each function writes into a fresh temporary directory and renames it into
place, so a reader never sees half a repo; the same inputs give byte-identical files.

* :func:`write_library_layout` — a model repo plus the files its library expects
  (:data:`.conventions.LIBRARY_LAYOUTS`: sentence-transformers' ``modules.json``, pooling config...);
* :func:`build_adapter` — a tiny LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``)
  on a served base model, with peft;
* :func:`build_dataset_repo` — a dataset repo laid out as the Hub lays out parquet repos: one folder
  per config (``name/train-00000-of-00001.parquet``) and a dataset card whose YAML ``configs:`` table
  lists each config's ``data_files`` per split.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import TinyModelsError
from . import conventions

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["AdapterError", "build_adapter", "build_dataset_repo", "layout_files", "write_library_layout"]

#: Files copied from a base repo into an adapter repo (AutoTokenizer.from_pretrained(adapter_id) works).
_TOKENIZER_FILES = re.compile(r"(tokenizer.*|special_tokens_map\.json|vocab.*|merges\.txt|.*\.model|chat_template.*"
                              r"|added_tokens\.json)")
DEFAULT_CONFIG_ROWS = 16


class AdapterError(TinyModelsError):
    """An adapter repo cannot be built (peft missing, no linear layer to adapt...)."""


def _publish(tmp: Path, dest: Path) -> Path:
    """Rename ``tmp`` to ``dest`` (another process or thread may have won: then keep theirs)."""
    try:
        os.replace(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():
            raise
    return dest


def _scratch(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))


def _link_tree(src: Path, dest: Path, keep: Callable[[str], bool] = lambda rel: True) -> None:
    """Hard-link (or copy) every regular file of ``src`` into ``dest``."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        if not path.is_file() or not keep(rel):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- library layouts


def layout_files(library: str, task: str) -> dict[str, Any]:
    """The files of ``library``'s layout for a model of ``task`` (:data:`.conventions.LIBRARY_LAYOUTS`)."""
    tables = conventions.LIBRARY_LAYOUTS[library]
    return dict(tables.get(task, tables["*"]))


def _placeholders(config: Mapping[str, Any]) -> dict[str, int]:
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    hidden = next((text[k] for k in ("hidden_size", "d_model", "dim", "n_embd") if isinstance(text.get(k), int)), 0)
    positions = next((text[k] for k in ("max_position_embeddings", "n_positions") if isinstance(text.get(k), int)),
                     conventions.MAX_SEQ_LENGTH)
    return {"hidden_size": hidden, "vocab_size": int(text.get("vocab_size") or 0),
            "max_seq_length": min(positions, conventions.MAX_SEQ_LENGTH)}


def _fill(value: Any, values: Mapping[str, int]) -> Any:
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return value.format(**values) if "{" in value else value
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def write_library_layout(repo_dir: Path, dest: Path, library: str, task: str) -> Path:
    """``dest``: the files of ``repo_dir`` plus ``library``'s layout for ``task`` (``config.json`` entries
    of the layout are merged into the model's config.json). Returns ``dest``; reuses it when present."""
    if dest.is_dir():
        return dest
    tmp = _scratch(dest)
    files = layout_files(library, task)
    _link_tree(repo_dir, tmp, keep=lambda rel: rel not in files)
    config = json.loads((repo_dir / "config.json").read_text(encoding="utf-8"))
    values = _placeholders(config)
    for rel, content in sorted(files.items()):
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        content = _fill(content, values)
        if rel == "config.json":
            merged = {**config, **content}
            target.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        elif isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_text(_dump(content), encoding="utf-8")
    return _publish(tmp, dest)


# --------------------------------------------------------------------------- adapters


def build_adapter(base_dir: Path, base_id: str, adapter: Mapping[str, Any], task: str, dest: Path) -> Path:
    """A LoRA adapter repo on the model in ``base_dir`` (served as ``base_id``), written to ``dest``.

    ``adapter``: ``r``, ``lora_alpha`` (default ``2 * r``), ``target_modules`` (default: peft's for the
    model type, else every linear layer), ``init_lora_weights`` (true: B = 0, the adapter is the identity,
    as peft initialises one; false: random), ``seed``, ``task_type`` (peft's; default: the base's ``task``). Needs peft (:class:`AdapterError` without it).
    """
    if dest.is_dir():
        return dest
    try:
        import peft
    except ImportError:
        raise AdapterError(f"adapter repo on {base_id} needs the peft library, which is not installed: pip install peft"
                           ) from None
    import torch
    import transformers

    from .._quiet import quiet_libraries

    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    class_name = (config.get("architectures") or [None])[0]
    model_cls = getattr(transformers, class_name or "", None) or transformers.AutoModel
    tmp = _scratch(dest)
    try:
        with quiet_libraries():
            model = model_cls.from_pretrained(str(base_dir))
            r = int(adapter["r"])
            options: dict[str, Any] = {"r": r, "lora_alpha": int(adapter.get("lora_alpha", 2 * r)),
                                       "init_lora_weights": bool(adapter.get("init_lora_weights", True))}
            # an explicit task_type is only written into the config: the weights' names are the same, and the
            # base need not suit peft's task class (a BertModel under a CAUSAL_LM adapter, as a real repo has it)
            task_type = adapter.get("task_type")
            if task_type is None and conventions.ADAPTER_TASK_TYPES.get(task) is not None:
                options["task_type"] = conventions.ADAPTER_TASK_TYPES[task]
            torch.manual_seed(int(adapter.get("seed", 0)))
            targets = adapter.get("target_modules")
            try:
                peft_model = peft.get_peft_model(model, peft.LoraConfig(target_modules=list(targets) if targets else None,
                                                                       **options))
            except ValueError:
                if targets:
                    raise
                torch.manual_seed(int(adapter.get("seed", 0)))
                peft_model = peft.get_peft_model(model, peft.LoraConfig(target_modules="all-linear", **options))
            peft_model.save_pretrained(str(tmp), safe_serialization=True)
    except AdapterError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # peft's own errors: say which adapter
        shutil.rmtree(tmp, ignore_errors=True)
        raise AdapterError(f"cannot build the adapter on {base_id}: {type(exc).__name__}: {exc}") from exc
    config_file = tmp / "adapter_config.json"
    adapter_config = json.loads(config_file.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = base_id  # peft wrote the local path it was loaded from
    adapter_config["revision"] = None
    if task_type is not None:
        adapter_config["task_type"] = task_type
    config_file.write_text(_dump(adapter_config), encoding="utf-8")
    (tmp / "README.md").write_text(
        f"---\nbase_model: {base_id}\nlibrary_name: peft\ntags:\n- pytest-tinymodels\n---\n\n"
        f"A tiny random LoRA adapter (r={adapter['r']}) on {base_id}, made by pytest-tinymodels.\n", encoding="utf-8")
    _link_tree(base_dir, tmp, keep=lambda rel: "/" not in rel and bool(_TOKENIZER_FILES.fullmatch(rel)))
    return _publish(tmp, dest)


# --------------------------------------------------------------------------- dataset repos with configs


def _split_tables(name: str, config: Mapping[str, Any], fixture_dataset: Callable[[str], "Dataset"]) -> dict[str, Any]:
    """split -> ``datasets.Dataset`` or ``pyarrow.Table`` of one named config."""
    if "format" in config:
        from ..build.datasets import build_dataset

        params = dict(config.get("params") or {})
        rows = int(config.get("rows", params.get("rows", DEFAULT_CONFIG_ROWS)))
        test_rows = int(config.get("test_rows", max(2, rows // 4)))
        seed = int(config.get("seed", 0))
        return {"train": build_dataset(config["format"], {**params, "rows": rows}, seed=seed),
                "test": build_dataset(config["format"], {**params, "rows": test_rows}, seed=seed + 1)}
    if "fixture" in config:
        return {"train": fixture_dataset(config["fixture"])}
    return {split: _read_files(files) for split, files in config["data_files"].items()}


def _read_files(files: tuple[str, ...]) -> Any:
    """One ``pyarrow.Table`` from local JSON / JSON Lines / CSV / parquet files (without datasets' cache)."""
    import pyarrow as pa

    tables = []
    for file in files:
        suffix = Path(file).suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            tables.append(pq.read_table(file))
        elif suffix == ".csv":
            import pyarrow.csv as pcsv

            tables.append(pcsv.read_csv(file))
        elif suffix == ".jsonl":
            rows = [json.loads(line) for line in Path(file).read_text(encoding="utf-8").splitlines() if line.strip()]
            tables.append(pa.Table.from_pylist(rows))
        else:
            data = json.loads(Path(file).read_text(encoding="utf-8"))
            tables.append(pa.Table.from_pylist(data if isinstance(data, list) else [data]))
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def _write_parquet(table: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(table, "to_parquet"):  # a datasets.Dataset: its features travel in the schema metadata
        table.to_parquet(str(path))
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, str(path))


def dataset_card(repo_id: str, layout: Mapping[str, Mapping[str, str]]) -> str:
    """README.md of a dataset repo: the YAML ``configs:`` table (config -> split -> parquet path)."""
    lines = ["---", "configs:"]
    for i, (name, splits) in enumerate(layout.items()):
        lines.append(f"- config_name: {name}")
        if i == 0:
            lines.append("  default: true")
        lines.append("  data_files:")
        for split, path in splits.items():
            lines += [f"  - split: {split}", f"    path: {path}"]
    lines += ["---", "", f"# {repo_id}", "", "A tiny dataset repo made by pytest-tinymodels; configs: "
              + ", ".join(layout) + ".", ""]
    return "\n".join(lines)


def build_dataset_repo(repo_id: str, configs: Mapping[str, Mapping[str, Any]], dest: Path,
                       fixture_dataset: Callable[[str], "Dataset"]) -> Path:
    """Write the dataset repo of ``configs`` to ``dest`` (reused when present); see the module docstring.
    ``fixture_dataset(name)`` returns a manifest fixture's dataset (configs ``{ fixture = name }``)."""
    if dest.is_dir():
        return dest
    from .._quiet import quiet_libraries

    tmp = _scratch(dest)
    layout: dict[str, dict[str, str]] = {}
    try:
        with quiet_libraries():
            for name, config in configs.items():
                for split, table in _split_tables(name, config, fixture_dataset).items():
                    rel = f"{name}/{split}-00000-of-00001.parquet"
                    _write_parquet(table, tmp / rel)
                    layout.setdefault(name, {})[split] = rel
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / "README.md").write_text(dataset_card(repo_id, layout), encoding="utf-8")
    return _publish(tmp, dest)
