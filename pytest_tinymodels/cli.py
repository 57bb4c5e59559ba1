"""``python -m pytest_tinymodels`` — the same manifest and cache, outside pytest.

Commands: ``list``, ``build``, ``show``, ``verify``, ``clean``, ``lock``, plus ``coverage`` and ``serve`` where
their modules are installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

from .build import label_of
from .cache import Cache, entry_size
from .errors import ManifestError, TinyModelsError
from .manifest import load_manifest
from .session import TinySession, default_manifest_file, human_size, resolve_cache_dir


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", metavar="PATH", help="manifest file (default: ./fixtures.toml if present)")
    parser.add_argument("--cache-dir", metavar="PATH", help="cache dir (default: env PYTEST_TINYMODELS_CACHE or the user cache dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_tinymodels", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list fixtures and whether each is cached")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("build", help="build (or reuse) fixtures into the cache")
    _common(p)
    p.add_argument("names", nargs="*", help="fixture names (default: every non-parametrized fixture)")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    p.add_argument("--arch", default="", help="for parametrized fixtures: comma-separated model types/classes (globs ok)")
    p.add_argument("--traceback", action="store_true", help="print the full traceback of a failed build")
    p = sub.add_parser("show", help="print how a cached fixture was made (its recipe)")
    _common(p)
    p.add_argument("name")
    p.add_argument("--variant", default="", help="architecture id of a parametrized fixture")
    p = sub.add_parser("verify", help="check every cached entry's files against their recorded sha256")
    _common(p)
    p.add_argument("--remove", action="store_true", help="delete the damaged entries (rebuilt on next use)")
    p = sub.add_parser("clean", help="delete cached entries (all, or those of the named fixtures)")
    _common(p)
    p.add_argument("names", nargs="*")
    p = sub.add_parser("lock", help="write a lock file of the built entries' digests and library versions")
    _common(p)
    p.add_argument("names", nargs="*",
                   help="fixtures to lock (default: every non-parametrized fixture); a parametrized fixture is locked "
                        "only when named (each architecture, or those of --arch); entries already in the lock file "
                        "are locked again")
    p.add_argument("--arch", default="", help="for named parametrized fixtures: comma-separated model types/classes")
    p.add_argument("--out", metavar="PATH", help="lock file (default: tinymodels.lock beside the manifest, else ./)")
    p = sub.add_parser("coverage", help="build every architecture of a task and report what works", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("serve", help="serve cached fixtures over loopback with the Hub's HTTP API", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _manifest_path(args: argparse.Namespace) -> Path | None:
    return Path(args.manifest) if args.manifest else default_manifest_file(Path.cwd())


def _session(args: argparse.Namespace, *, rebuild: bool = False, arch: str = "") -> TinySession:
    manifest = load_manifest(_manifest_path(args))
    cache = Cache(resolve_cache_dir(args.cache_dir).value, log=lambda m: print(m, file=sys.stderr))
    return TinySession(manifest, cache, rebuild=rebuild, arch_filter=[a for a in arch.split(",") if a])


def _check_arch_filter(session: TinySession, names: list[str]) -> None:
    """``--arch`` patterns that match no architecture of the named parametrized fixtures: an error."""
    from .build.architectures import did_you_mean

    for pattern, known in session.unmatched_arch_filters(names).items():
        raise ManifestError(f"--arch {pattern!r} matches no architecture of {', '.join(names)}.{did_you_mean(pattern, known)}")




def cmd_list(args: argparse.Namespace) -> int:
    session = _session(args)
    rows = []
    for name in session.manifest.names():
        spec = session.manifest[name]
        if spec.parametrized:
            rows.append({"fixture": name, "what": f"task {spec.task}, architectures {', '.join(spec.architectures or ())}",
                         "cached": None, "size": None, "manifest": str(spec.manifest)})
            continue
        try:
            variant = session.variants(name)[0]  # normalized like the builds are
        except TinyModelsError as exc:
            rows.append({"fixture": name, "what": f"invalid: {exc}", "cached": False, "size": None,
                         "manifest": str(spec.manifest)})
            continue
        key = session.key(variant.spec)
        path = session.cache.lookup(key)
        rows.append({"fixture": name, "what": label_of(spec), "cached": path is not None,
                     "size": entry_size(path) if path else None, "key": key, "manifest": str(spec.manifest)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"cache: {session.cache.root}")
    for row in rows:
        state = "parametrized" if row["cached"] is None else ("cached " + human_size(row["size"]) if row["cached"] else "not built")
        print(f"  {row['fixture']:<28} {state:<16} {row['what']}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    session = _session(args, rebuild=args.rebuild, arch=args.arch)
    names = args.names or [n for n in session.manifest.names() if not session.manifest[n].parametrized]
    _check_arch_filter(session, names)
    failures = 0
    for name in names:
        for variant in session.variants(name):
            label = name + (f"[{variant.id}]" if variant.id else "")
            start = time.perf_counter()
            try:
                result = session.ensure(variant)
            except TinyModelsError as exc:
                failures += 1
                if args.traceback:
                    traceback.print_exception(exc)
                print(f"FAILED {label}: {exc}", file=sys.stderr)
                continue
            what = f"built in {result.seconds:.2f}s" if result.built else "cached"
            print(f"{label:<40} {what:<16} {human_size(result.size):>9}  {result.path}  ({time.perf_counter() - start:.2f}s)")
    return 1 if failures else 0


def cmd_show(args: argparse.Namespace) -> int:
    session = _session(args)
    variants = session.variants(args.name)
    variant = next((v for v in variants if v.id == args.variant), None)
    if variant is None:
        print(f"fixture {args.name!r} has variants: {', '.join(v.id for v in variants)}; pass --variant", file=sys.stderr)
        return 2
    key = session.key(variant.spec)
    path = session.cache.lookup(key)
    if path is None:
        print(f"{args.name} is not built yet (key {key}); run: python -m pytest_tinymodels build {args.name}", file=sys.stderr)
        return 1
    recipe = json.loads((path / "recipe.json").read_text())
    print(f"# {args.name}{'[' + variant.id + ']' if variant.id else ''} — {path}")
    print(json.dumps(recipe, indent=2, sort_keys=True))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Hash every file of every entry: what the warm path's stat check cannot see (bit rot, edits
    that restore a file's mtime)."""
    cache = _session(args).cache
    checked = cache.verify_all()
    damaged = {key: problem for key, problem in checked.items() if problem is not None}
    for key, problem in damaged.items():
        print(f"DAMAGED {key}: {problem}" + (" (removed)" if args.remove and cache.remove(key) else ""))
    if damaged and not args.remove:
        print("damaged entries are rebuilt when next used; or run: python -m pytest_tinymodels verify --remove",
              file=sys.stderr)
    print(f"{len(checked) - len(damaged)} of {len(checked)} entries intact in {cache.root}")
    return 1 if damaged else 0


def cmd_clean(args: argparse.Namespace) -> int:
    session = _session(args)
    if not args.names:
        removed = session.cache.clean()
        print(f"removed {removed} entries from {session.cache.root}")
        kept = session.cache.clean_locks()  # what clean() could not take: held by running builders
        if kept:
            print(f"kept {len(kept)} lock files held by running builds: {', '.join(p.name for p in kept)}")
        return 0
    removed = 0
    for name in args.names:
        for variant in session.variants(name):
            removed += session.cache.remove(session.key(variant.spec))
    print(f"removed {removed} entries")
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    """Build (or reuse) the entries to lock and write their digests and the library versions."""
    from . import lockfile

    session = _session(args, arch=args.arch)
    path = Path(args.out) if args.out else lockfile.default_lock_path(_manifest_path(args), Path.cwd())
    names = args.names or [n for n in session.manifest.names() if not session.manifest[n].parametrized]
    _check_arch_filter(session, names)
    wanted = dict(lockfile.lock_variants(session, names))
    dropped = []
    if path.exists():  # keep what the lock file holds: lock it again with today's libraries
        full = TinySession(session.manifest, session.cache)
        for label in lockfile.read_lock(path).entries:
            if label in wanted:
                continue
            name, _, variant_id = label.partition("[")
            variant = None
            if name in full.manifest:
                variant = next((v for v in full.variants(name) if v.id == variant_id.rstrip("]")), None)
            if variant is None:
                dropped.append(label)
            else:
                wanted[label] = variant
    states, failures = {}, 0
    for label, variant in sorted(wanted.items()):
        try:
            result = session.ensure(variant)
        except TinyModelsError as exc:
            failures += 1
            print(f"FAILED {label}: {exc}", file=sys.stderr)
            continue
        states[label] = lockfile.variant_state(session, variant, result.path)
        print(f"{label:<40} {states[label].digest[:16]}  {'built' if result.built else 'cached'}")
    if failures:
        print(f"{failures} entries could not be built; {path} left unchanged", file=sys.stderr)
        return 1
    libraries, builder = lockfile.current_stamps(session.cache.root)
    lockfile.write_lock(path, states, libraries, builder)
    for label in dropped:
        print(f"dropped {label}: no such fixture or architecture any more")
    print(f"locked {len(states)} entries in {path} "
          f"(transformers {libraries.get('transformers')}, torch {libraries.get('torch')})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("coverage", "serve"):
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return {"list": cmd_list, "build": cmd_build, "show": cmd_show, "verify": cmd_verify,
                "clean": cmd_clean, "lock": cmd_lock}[args.command](args)
    except TinyModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _delegate(command: str, argv: list[str]) -> int:
    import importlib

    module = importlib.import_module({"coverage": ".coverage", "serve": ".hub.serve"}[command], __package__)
    return int(module.main(argv) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
