"""``python -m pytest_tinymodels serve``: the tiny hub over loopback HTTP, for any process.

Serves every id the manifests declare (fixture ``hub_id``, ``[hub]`` ids/datasets) and every
rule-derived id (``hf-internal-testing/tiny-random-<Class>``...) with the Hub's read endpoints;
each repo is built (or reused from the cache) on its first request. Point a process at it with
``HF_ENDPOINT=http://127.0.0.1:PORT`` (and ``HF_HUB_OFFLINE`` unset or 0)::

    python -m pytest_tinymodels serve --port 8765 &
    HF_ENDPOINT=http://127.0.0.1:8765 python -c "from transformers import AutoModel; \\
        AutoModel.from_pretrained('hf-internal-testing/tiny-random-LlamaForCausalLM')"
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import TinyModelsError

if TYPE_CHECKING:
    from .repos import HubRepos


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_tinymodels serve",
        description="Serve tiny repos under Hub ids (declared ids and tiny-random-<Class> rules) on a loopback port;"
                    " point other processes at it with HF_ENDPOINT=http://127.0.0.1:PORT.",
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: pick a free one; default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.1 or ::1)")
    parser.add_argument("--manifest", metavar="PATH", help="manifest file (default: ./fixtures.toml if present)")
    parser.add_argument("--cache-dir", metavar="PATH",
                        help="cache dir (default: env PYTEST_TINYMODELS_CACHE or the user cache dir)")
    parser.add_argument("--prebuild", action="store_true", help="build every declared id before serving")
    parser.add_argument("--list", action="store_true", help="print the declared ids and rules, then exit")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--no-warm", action="store_true",
                        help="start listening at once (default: import transformers first, so that the first"
                             " request does not wait for it)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until Ctrl-C / SIGTERM; returns the exit status (0 when stopped by either).

    The SIGTERM handler is installed first, before any slow work (manifest, imports, prebuilds): a
    SIGTERM at any moment stops the command cleanly (temporary files removed, exit status 0).
    """
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    previous = _on_sigterm(_interrupt)
    try:
        if not args.list:
            print("[tinymodels] starting the tiny hub (manifest, cache, transformers import) ...", file=sys.stderr,
                  flush=True)
        return _serve(args)
    except KeyboardInterrupt:
        print("[tinymodels] stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        _on_sigterm(previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler: Any) -> Any:
    """Install ``handler`` for SIGTERM (main thread only; elsewhere signals cannot be handled); the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _serve(args: argparse.Namespace) -> int:
    from ..cache import Cache
    from ..manifest import load_manifest
    from ..session import TinySession, default_manifest_file, resolve_cache_dir
    from .registry import BUILTIN_RULES, load_hub_registry
    from .repos import HubRepos
    from .server import HubServer

    def log(message: str) -> None:
        print(f"[tinymodels] {message}", file=sys.stderr, flush=True)

    try:
        manifest = load_manifest(Path(args.manifest) if args.manifest else default_manifest_file(Path.cwd()))
        registry = load_hub_registry(manifest)
        cache = Cache(resolve_cache_dir(args.cache_dir).value, log=log)
        warning = cache.prepare()
        if warning:
            log(f"WARNING: {warning}")
    except TinyModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for target in registry.declared():
            print(f"{target.repo_type:<8} {target.repo_id:<60} {target.label}  ({target.origin})")
        for rule in registry.rules:
            print(f"{'rule':<8} {rule.pattern:<60} ({rule.origin})")
        if registry.builtin:
            for pattern in BUILTIN_RULES:
                print(f"{'rule':<8} {pattern:<60} (built-in)")
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="tinymodels-serve-"))
    session = TinySession(manifest, cache)
    repos = HubRepos(session, registry, workdir, log=log)
    try:
        if args.prebuild:
            for target in registry.declared():
                start = time.perf_counter()
                try:
                    repos.path(target)
                except TinyModelsError as exc:
                    log(f"cannot build {target.repo_type} {target.repo_id}: {exc}")
                    return 1
                log(f"ready: {target.repo_type} {target.repo_id} ({target.label}, {time.perf_counter() - start:.2f}s)")
        if not args.no_warm:  # import transformers and its class tables now, not during the first request
            from .registry import arch_table

            arch_table("LlamaForCausalLM")
        try:
            server = HubServer({}, host=args.host, port=args.port, resolve=_logging(repos, log), verbose=args.verbose)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

        def ready(endpoint: str) -> None:
            print(f"serving the tiny hub on {endpoint}", flush=True)
            print(f"export HF_ENDPOINT={endpoint}", flush=True)

        try:
            server.serve_forever(ready=ready)  # returns on Ctrl-C / SIGTERM (KeyboardInterrupt)
        except OSError as exc:
            print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
                  " (pick another --port, or --port 0 for a free one)", file=sys.stderr)
            return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log("stopped")
    return 0


def _logging(repos: HubRepos, log: Callable[[str], None]) -> Callable[[str, str], Path | None]:
    """Wrap the repo resolver: log each repo once, when it is first served or found undeclared."""
    seen: set[tuple[str, str]] = set()

    def resolve(repo_type: str, repo_id: str) -> Path | None:
        key = (repo_type, repo_id)
        path = repos(repo_type, repo_id)  # RepoUnavailable: logged by HubRepos
        if key not in seen:
            seen.add(key)
            if path is None:
                log(f"not declared: {repo_type} {repo_id} (answered 'repository not found'; declare it in [hub] ids"
                    " or with hub_id on a fixture)")
            else:
                info = repos.served.get(key, {})
                what = "built" if info.get("built") else "reused"
                log(f"serving {repo_type} {repo_id}: {info.get('label')} ({what} in {info.get('seconds', 0):.2f}s)")
        return path

    return resolve
