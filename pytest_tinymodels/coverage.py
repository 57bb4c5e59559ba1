"""Coverage sweep: shrink, build, save and smoke-test every installed architecture of some tasks.

Each architecture runs in a worker process (``jobs`` of them, restarted after a crash or a
timeout), so one segfault or hang cannot end the sweep.  Nothing is skipped silently: every
architecture gets a row with its status and, on failure, a one-line reason.

CLI: ``python -m pytest_tinymodels coverage [--task T ...] [--out DIR] [-j N]``
(or ``python -m pytest_tinymodels.coverage ...``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing as mp
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from .build.architectures import TASK_ORDER, TASKS, ArchInfo, expand, task_config_updates
from .build.processors import MISSING_LIBRARY_RE

__all__ = ["check_architecture", "run_coverage", "main", "SIZE_LIMIT_BYTES"]

#: every tiny model must stay under this many bytes of safetensors.
SIZE_LIMIT_BYTES = 2 * 1024 * 1024
#: vocabulary size of the stand-in tokenizer used for coverage (input ids < this).
COVERAGE_VOCAB = 512
#: special token ids of the stand-in tokenizer (as a trained tiny tokenizer would have them).
COVERAGE_SPECIAL_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


def _one_line(exc: BaseException) -> str:
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return f"{type(exc).__name__}: {(lines[0] if lines else '')[:240]}"


def _new_row(info: ArchInfo) -> dict[str, Any]:
    return {"id": info.id, **info._asdict(), "built": False, "forward": False, "params": None,
            "size_bytes": None, "build_s": None, "forward_s": None, "stage": None, "reason": None,
            "loss_backward": None, "loss_reason": None, "trains": None, "train_loss": None, "train_target": None}


def check_loss_backward(model: Any, make_inputs: Any) -> tuple[bool | None, str | None]:
    """``model(**make_inputs()).loss.backward()`` in training mode: (True, None) when the loss is finite and the
    backward runs, (False, reason) when not, (None, reason) when the task has no labels."""
    try:
        import torch

        from .build.inputs import InputsError

        try:
            inputs = make_inputs()
        except InputsError as exc:
            return None, _one_line(exc)
        model.train()
        torch.manual_seed(0)
        out = model(**inputs)
        loss = getattr(out, "loss", None)
        if loss is None:
            return False, f"{type(out).__name__} has no loss (inputs: {', '.join(sorted(inputs))})"
        if not bool(torch.isfinite(loss).all()):
            return False, f"non-finite loss {loss.detach().float().flatten()[:4].tolist()}"
        loss.sum().backward()
        return True, None
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row
        return False, _one_line(exc)
    finally:
        if hasattr(model, "eval"):
            model.eval()


def check_architecture(info: ArchInfo, workdir: Path | None = None, *, vocab_size: int = COVERAGE_VOCAB) -> dict:
    """Shrink, build, save and smoke-test one architecture, then one loss + backward with the task's labels;
    return its result row (never raises)."""
    row = _new_row(info)
    stage = "config"
    try:
        import torch
        import transformers

        from .build.inputs import model_inputs, smoke_forward
        from .build.shrink import base_config, config_for_class, shrink_config

        torch.manual_seed(0)
        t0 = time.perf_counter()
        config = shrink_config(base_config(info.model_type), vocab_size=vocab_size,
                               special_token_ids=COVERAGE_SPECIAL_IDS)
        for k, v in task_config_updates(info, config).items():
            setattr(config, k, v)
        stage = "import"
        cls = getattr(transformers, info.class_name)
        config = config_for_class(config, cls)
        stage = "build"
        model = cls(config)
        row["build_s"] = round(time.perf_counter() - t0, 3)
        row["params"] = sum(p.numel() for p in model.parameters())
        stage = "save"
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            model.save_pretrained(tmp)
            row["size_bytes"] = sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
        row["built"] = True
        stage = "inputs"
        t1 = time.perf_counter()
        from .build.processors import smoke_processor

        processor = smoke_processor(info, config)
        inputs = model_inputs(model, processor, task=info.task, config=config)
        stage = "forward"
        smoke_forward(model, inputs)
        row["forward_s"] = round(time.perf_counter() - t1, 3)
        row["forward"] = True
        row["loss_backward"], row["loss_reason"] = check_loss_backward(
            model, lambda: model_inputs(model, processor, task=info.task, config=config, labels=True))
        if row["size_bytes"] > SIZE_LIMIT_BYTES:
            row["stage"], row["reason"] = "size", f"safetensors {row['size_bytes']} bytes > {SIZE_LIMIT_BYTES}"
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a row
        if isinstance(exc, KeyboardInterrupt):
            raise
        row["stage"] = stage
        row["reason"] = _one_line(exc)
        if os.environ.get("TINYMODELS_COVERAGE_TRACEBACK"):
            row["traceback"] = traceback.format_exc()[-3000:]
    return row




def check_fixture(info: ArchInfo, workdir: Path | None = None, train: dict | None = None) -> dict:
    """Build ``info`` exactly as a fixture entry is built (``builder.build_entry``), load it as a fixture is
    loaded and run ``model(**triple.inputs(labels=True)).loss.backward()``; return its row.  ``train``: a
    ``train`` recipe (``build.train.check_train``): the fixture is trained, and the row says whether its
    final loss reached the target (``trains``, ``train_loss``, ``train_target``)."""
    row = _new_row(info)
    try:
        from .build import build_entry
        from .errors import BuildError
        from .manifest import FixtureSpec

        spec = FixtureSpec(name=f"coverage_{info.model_type}", manifest=Path("<coverage>"),
                           model_type=info.model_type, architecture=info.class_name, task=info.task, train=train)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            t0 = time.perf_counter()
            try:
                recipe = build_entry(spec, Path(tmp) / "entry", arch=info)
            except BuildError as exc:
                row["stage"], row["reason"] = exc.stage, _one_line(exc)
                row["built"] = exc.stage in ("smoke", "train")
                if exc.stage == "train":
                    row["trains"] = False
                return row
            row["build_s"] = round(time.perf_counter() - t0, 3)
            row["built"] = row["forward"] = True  # build_entry runs the smoke forward
            row["params"] = recipe.get("num_parameters")
            row["size_bytes"] = recipe.get("safetensors_bytes")
            row["forward_s"] = recipe.get("timings", {}).get("smoke")
            if train is not None and isinstance(recipe.get("train"), dict):
                row["trains"] = bool(recipe["train"]["reached_target"])
                row["train_loss"], row["train_target"] = recipe["train"]["final_loss"], recipe["train"]["loss_target"]
                row["train_s"] = recipe.get("timings", {}).get("train")
            processor = recipe.get("processor")
            if isinstance(processor, dict) and processor.get("needs"):
                row["processor_needs"] = sorted(set(processor["needs"]))
            if row["size_bytes"] and row["size_bytes"] > SIZE_LIMIT_BYTES:
                row["stage"], row["reason"] = "size", f"safetensors {row['size_bytes']} bytes > {SIZE_LIMIT_BYTES}"
            row["loss_backward"], row["loss_reason"] = _fixture_loss_backward(info, Path(tmp) / "entry")
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a row
        if isinstance(exc, KeyboardInterrupt):
            raise
        row["stage"] = row["stage"] or "build"
        row["reason"] = _one_line(exc)
    return row


def _fixture_loss_backward(info: ArchInfo, entry: Path) -> tuple[bool | None, str | None]:
    """Load a built entry as a fixture is loaded and check ``model(**triple.inputs(labels=True))``."""
    from .loader import LoadedEntry

    try:
        triple = LoadedEntry(f"coverage_{info.model_type}", entry).load()
    except Exception as exc:  # noqa: BLE001 - a row, not a crash
        return False, "load: " + _one_line(exc)
    return check_loss_backward(triple.model, lambda: triple.inputs(labels=True))


# --------------------------------------------------------------------------- worker pool


def _worker(conn: Any, workdir: str, fixtures: bool = False, train: dict | None = None,
            size: dict | None = None) -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch

        torch.set_num_threads(1)
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except Exception:
        pass
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        from .build.shrink import tiny_sizes

        with tiny_sizes(size):
            if fixtures:
                row = check_fixture(ArchInfo(**msg), Path(workdir), train)
            else:
                row = check_architecture(ArchInfo(**msg), Path(workdir))
        conn.send(row)


class _Slot:
    def __init__(self, ctx: Any, workdir: str, fixtures: bool = False, train: dict | None = None,
                 size: dict | None = None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, workdir, fixtures, train, size), daemon=True)
        self.proc.start()
        child.close()
        self.info: ArchInfo | None = None
        self.started = 0.0

    def stop(self, kill: bool = False) -> None:
        if not self.proc.is_alive():
            self.proc.join()
            return
        try:
            if kill:
                self.proc.kill()
            else:
                self.conn.send(None)
        except Exception:
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _failed_row(info: ArchInfo, stage: str, reason: str) -> dict:
    return {**_new_row(info), "stage": stage, "reason": reason}


def _run_pool(archs: list[ArchInfo], jobs: int, timeout: float, workdir: str, progress: bool,
              fixtures: bool = False, train: dict | None = None, size: dict | None = None) -> list[dict]:
    ctx = mp.get_context("spawn")
    pending = list(archs)
    results: dict[str, dict] = {}
    slots = [_Slot(ctx, workdir, fixtures, train, size) for _ in range(max(1, min(jobs, len(archs))))]
    done = 0
    try:
        while pending or any(s.info for s in slots):
            for i, s in enumerate(slots):
                if s.info is None and pending:
                    if not s.proc.is_alive():
                        slots[i] = s = _Slot(ctx, workdir, fixtures, train, size)
                    s.info, s.started = pending.pop(0), time.monotonic()
                    s.conn.send(s.info._asdict())
            busy = [s for s in slots if s.info]
            ready = wait([s.conn for s in busy], timeout=0.5)
            now = time.monotonic()
            for i, s in enumerate(slots):
                if s.info is None:
                    continue
                row = None
                if s.conn in ready:
                    try:
                        row = s.conn.recv()
                    except (EOFError, OSError):
                        s.proc.join(timeout=5)
                        row = _failed_row(s.info, "crash", f"worker died (exit code {s.proc.exitcode})")
                elif now - s.started > timeout:
                    s.stop(kill=True)  # a fresh worker is started when there is more work
                    row = _failed_row(s.info, "timeout", f"no result after {timeout:g} s")
                if row is not None:
                    results[s.info.id + "@" + s.info.task] = row
                    row["wall_s"] = round(now - s.started, 2)
                    done += 1
                    if progress:
                        status = "ok" if row["forward"] else ("built" if row["built"] else "FAIL")
                        loss = {True: "loss ok", False: "loss FAIL", None: ""}[row.get("loss_backward")]
                        reason = row["reason"] or (row.get("loss_reason") if row.get("loss_backward") is False else "")
                        if train is not None and row.get("train_loss") is not None:
                            reason = f"train loss {row['train_loss']} (target {row['train_target']})" + (
                                "" if row["trains"] else " NOT REACHED")
                        print(f"[{done}/{len(archs)}] {row['id']:<60} {status:<5} {loss:<9} {reason or ''}"[:220],
                              file=sys.stderr, flush=True)
                    s.info = None
    finally:
        for s in slots:
            s.stop()
    return [results[a.id + "@" + a.task] for a in archs]


# --------------------------------------------------------------------------- sweep


def _select(tasks: Sequence[str] | None, include: str | Sequence[str], exclude: Sequence[str]) -> list[ArchInfo]:
    """Architectures of the tasks, each (model type, class) once (under its first task)."""
    order = list(TASK_ORDER) + sorted(t for t in TASKS if t not in TASK_ORDER)
    chosen = list(tasks) if tasks else order
    seen: set[tuple[str, str]] = set()
    out = []
    for task in chosen:
        for info in expand(task, include, exclude):
            if (info.model_type, info.class_name) not in seen:
                seen.add((info.model_type, info.class_name))
                out.append(info)
    return out


def _summary(rows: list[dict]) -> dict:
    by_task: dict[str, dict[str, int]] = {}
    for r in rows + [dict(r, task="ALL") for r in rows]:
        t = by_task.setdefault(r["task"], {"total": 0, "built": 0, "forward": 0, "under_size_limit": 0,
                                           "forward_small": 0, "loss_backward": 0, "with_labels": 0,
                                           "trains": 0, "train_tried": 0})
        t["total"] += 1
        t["loss_backward"] += r.get("loss_backward") is True
        t["with_labels"] += r.get("loss_backward") is not None
        t["trains"] += r.get("trains") is True
        t["train_tried"] += r.get("trains") is not None
        t["built"] += bool(r["built"])
        t["forward"] += bool(r["forward"])
        small = r["size_bytes"] is not None and r["size_bytes"] <= SIZE_LIMIT_BYTES
        t["under_size_limit"] += small
        t["forward_small"] += bool(r["forward"] and small)
    return by_task


def _markdown(report: dict) -> str:
    meta, summary, rows = report["meta"], report["summary"], report["results"]
    lines = [
        "# Architecture coverage",
        "",
        f"Produced by `{meta['command']}` on {meta['date']} "
        f"(transformers {meta['transformers']}, torch {meta['torch']}, {meta['jobs']} process(es), "
        f"{meta['wall_s']} s wall).",
        "",
        ("Each architecture is built exactly as a fixture is (`builder.build_entry`): shrunk config, tokenizer "
         "trained on the corpus or tiny image processor / feature extractor, model, smoke forward with finite "
         "outputs, safetensors, dataset."
         if str(meta.get("mode", "")).startswith("fixtures") else
         "Each architecture: generic shrink of the library's default config (stand-in vocabulary "
         f"{COVERAGE_VOCAB}), `cls(config)`, `save_pretrained` (safetensors), one forward pass with finite outputs."),
        "",
        "`loss + backward`: built classes whose `model(**inputs(labels=True))` (the public "
        "`pytest_tinymodels.build.inputs.model_inputs`; with `--fixtures`, `TinyTriple.inputs` on the loaded "
        "fixture) gives a finite `.loss` whose `backward()` runs, in training mode; `with a loss`: built classes "
        "that compute one (not those whose forward takes no labels or drops the loss, e.g. `*WithTeacher`, draft "
        "models); `n/a` where the task has no labels.",
        "",
        "| task | classes | built | forward ok | forward % | ≤ 2 MB | forward ok and ≤ 2 MB | with a loss "
        "| loss + backward | % of those |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    train = meta.get("train")
    if train:  # one more column: trained classes whose final loss reached the target
        recipe = ", ".join(f"{k} {v}" for k, v in sorted(train.items()))
        lines[-2:-2] = [f"`trains to target`: with `--train` every fixture is trained ({recipe}; `build/train.py`): "
                        "classes whose final training loss is at most 40 % of ln(vocabulary size), of those whose "
                        "train stage ran or refused.", ""]
        lines[-2] += " trains to target |"
        lines[-1] += " ---: |"
    for task in sorted(summary, key=lambda t: (t == "ALL", t)):
        s = summary[task]
        pct = 100.0 * s["forward"] / s["total"] if s["total"] else 0.0
        labelled = s.get("with_labels", 0)
        lb = f"{s['loss_backward']}" if labelled else "n/a"
        lb_pct = f"{100.0 * s['loss_backward'] / labelled:.1f}" if labelled else "n/a"
        lines.append(f"| {task} | {s['total']} | {s['built']} | {s['forward']} | {pct:.1f} | {s['under_size_limit']} "
                     f"| {s['forward_small']} | {labelled if labelled else 'n/a'} | {lb} | {lb_pct} |"
                     + (f" {s['trains']}/{s['train_tried']} |" if train else ""))
    failures = [r for r in rows if not r["forward"] or r["reason"]]
    stages: dict[str, int] = {}
    missing: dict[str, int] = {}
    for r in failures:
        stages[r["stage"]] = stages.get(r["stage"], 0) + 1
        m = MISSING_LIBRARY_RE.search(r["reason"] or "")
        if m:
            lib = m.group(1).lower()
            missing[lib] = missing.get(lib, 0) + 1
    lines += ["", "Failures by stage: " + ", ".join(f"{k} {v}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1]))
              + " (`size` = built and forward ok but over 2 MB)."]
    needs: dict[str, int] = {}
    for r in rows:
        for lib in r.get("processor_needs") or ():
            needs[lib] = needs.get(lib, 0) + 1
    if needs:
        lines.append("Built with their processor saved as a config only, because its class needs a library that is "
                     "not installed here (it loads where that library is): "
                     + ", ".join(f"{k} ({v})" for k, v in sorted(needs.items())) + ".")
    if missing:
        lines.append("Of the build failures, these need a library that is not installed here: "
                     + ", ".join(f"{k} ({v})" for k, v in sorted(missing.items())) + ".")
    lines += ["", f"## Failures ({len(failures)})", "", "| architecture | task | stage | reason |", "| --- | --- | --- | --- |"]
    for r in failures:
        reason = (r["reason"] or "").replace("|", "\\|")
        lines.append(f"| {r['id']} | {r['task']} | {r['stage']} | {reason} |")
    lossless = [r for r in rows if r["built"] and r.get("loss_backward") is None
                and "computes no loss" in (r.get("loss_reason") or "")]
    if lossless:
        lines += ["", f"## Built, no loss to check ({len(lossless)})", "", "| architecture | task | reason |",
                  "| --- | --- | --- |"]
        lines += [f"| {r['id']} | {r['task']} | {(r.get('loss_reason') or '').replace('|', chr(92) + '|')} |"
                  for r in lossless]
    no_loss = [r for r in rows if r["built"] and r.get("loss_backward") is False]
    lines += ["", f"## Built, but no finite loss + backward with labels ({len(no_loss)})", "",
              "| architecture | task | reason |", "| --- | --- | --- |"]
    for r in no_loss:
        reason = (r.get("loss_reason") or "").replace("|", "\\|")
        lines.append(f"| {r['id']} | {r['task']} | {reason} |")
    if train:
        untrained = [r for r in rows if r.get("trains") is False]
        lines += ["", f"## Trained, but not to the loss target ({len(untrained)})", "",
                  "| architecture | task | final loss | target | reason |", "| --- | --- | ---: | ---: | --- |"]
        for r in untrained:
            reason = (r["reason"] or "").replace("|", "\\|")
            lines.append(f"| {r['id']} | {r['task']} | {r['train_loss']} | {r['train_target']} | {reason} |")
    sizes = sorted((r for r in rows if r["size_bytes"]), key=lambda r: -r["size_bytes"])[:10]
    lines += ["", "## Largest models", "", "| architecture | params | safetensors bytes |", "| --- | ---: | ---: |"]
    for r in sizes:
        lines.append(f"| {r['id']} | {r['params']} | {r['size_bytes']} |")
    return "\n".join(lines) + "\n"


def run_coverage(
    tasks: list[str] | None,
    out_dir: Path,
    include: str | Sequence[str] = "*",
    exclude: Sequence[str] = (),
    jobs: int = 1,
    timeout_per_arch: float = 60,
    *,
    command: str | None = None,
    progress: bool = True,
    fixtures: bool = False,
    train: dict | None = None,
    size: dict | None = None,
) -> dict:
    """Sweep every architecture of ``tasks`` (all tasks when None); write ``coverage.json`` and
    ``COVERAGE.md`` into ``out_dir`` and return the report dict."""
    import torch
    import transformers

    archs = _select(tasks, include, exclude)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinymodels-coverage-") as workdir:
        rows = _run_pool(archs, jobs, timeout_per_arch, workdir, progress, fixtures or train is not None, train, size)
    report = {
        "meta": {
            "command": command or f"run_coverage(tasks={tasks!r}, jobs={jobs})",
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "jobs": jobs,
            "tasks": tasks or "all",
            "wall_s": round(time.monotonic() - t0, 1),
            "vocab_size": COVERAGE_VOCAB,
            "train": train,
            "size": size,
            "mode": "fixtures (full builder: trained tokenizer, processor, dataset, smoke)" if fixtures or train
            else "generic (config + model + forward, stand-in vocabulary)",
        },
        "summary": _summary(rows),
        "results": rows,
    }
    (out_dir / "coverage.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "COVERAGE.md").write_text(_markdown(report))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``coverage [--task T ...] [--out DIR] [-j N] [--include PAT ...] [--exclude PAT ...] [--timeout S]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m pytest_tinymodels coverage", description=__doc__.splitlines()[0])
    p.add_argument("--task", action="append", dest="tasks", choices=sorted(TASKS), metavar="TASK",
                   help="task (repeatable; default: all %d tasks, e.g. causal-lm, masked-lm, seq2seq-lm, ctc)" % len(TASKS))
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: a new temporary directory, printed at the end)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--include", action="append", default=None, help="model type / class glob (repeatable)")
    p.add_argument("--exclude", action="append", default=[], help="model type / class glob to leave out")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per architecture (default 60)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-architecture progress lines")
    p.add_argument("--fixtures", action="store_true",
                   help="build each architecture exactly as a fixture is built (trained tokenizer, processor, dataset)")
    p.add_argument("--train", action="store_true",
                   help="train each fixture (implies --fixtures; build/train.py) and count the classes whose final "
                        "loss reaches 40%% of ln(vocabulary size)")
    p.add_argument("--train-steps", type=int, default=None, help="training steps with --train (default: train = true's)")
    p.add_argument("--size", action="append", default=[], metavar="KIND=N",
                   help="the shrink's tiny value of a kind of quantity, as a fixture's size table (repeatable: "
                        "--size hidden=8 --size intermediate=32)")
    args = p.parse_args(argv)
    size = None
    if args.size:
        from .build.shrink import check_sizes

        pairs = [a.partition("=") for a in args.size]
        bad = [a for a, (_, eq, n) in zip(args.size, pairs) if not eq or not n.isdigit()]
        size = {k: int(n) for k, _, n in pairs if n.isdigit()}
        problems = [f"{a!r} is not KIND=N" for a in bad] + check_sizes(size)
        if problems:
            print(f"error: --size: {'; '.join(problems)}", file=sys.stderr)
            return 2
    train = None
    if args.train or args.train_steps is not None:
        from .build.train import check_train
        from .errors import ManifestError

        try:
            train = check_train({} if args.train_steps is None else {"steps": args.train_steps})
        except ManifestError as exc:
            print(f"error: --train-steps: {exc.message}", file=sys.stderr)
            return 2
    command = "python -m pytest_tinymodels coverage " + " ".join(shlex.quote(a) for a in argv)
    unmatched = _unmatched_patterns(args.tasks, args.include or [], args.exclude)
    if unmatched:
        print(f"error: {unmatched}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="tinymodels-coverage-out-"))
    report = run_coverage(args.tasks, out, args.include or "*", args.exclude, args.jobs, args.timeout,
                          command=command.strip(), progress=not args.quiet, fixtures=args.fixtures, train=train,
                          size=size)
    for task, s in sorted(report["summary"].items(), key=lambda kv: (kv[0] == "ALL", kv[0])):
        print(f"{task:<32} {s['forward']:>5}/{s['total']:<5} forward ok, {s['built']:>5} built, "
              f"{s['loss_backward']:>5}/{s['with_labels']:<5} loss + backward"
              + (f", {s['trains']:>5}/{s['train_tried']} train to target" if train else ""))
    print(f"wrote {out / 'COVERAGE.md'} and {out / 'coverage.json'}")
    return 0


def _unmatched_patterns(tasks: list[str] | None, include: Sequence[str], exclude: Sequence[str]) -> str | None:
    """A message naming every ``--include``/``--exclude`` pattern that matches no architecture of
    ``tasks`` (with the close names), or None: a mistyped pattern is never a silently empty sweep."""
    from .build.architectures import did_you_mean

    patterns = [("--include", p) for p in include if p != "*"] + [("--exclude", p) for p in exclude]
    if not patterns:
        return None
    archs = _select(tasks, "*", [])
    names = sorted({n for a in archs for n in (a.model_type, a.class_name)})
    where = f"task {', '.join(tasks)}" if tasks else "any task"
    problems = [f"{option} {pattern!r} matches no architecture of {where}.{did_you_mean(pattern, names)}"
                for option, pattern in patterns if not _select(tasks, [pattern], [])]
    return "; ".join(problems) or None


if __name__ == "__main__":
    raise SystemExit(main())
