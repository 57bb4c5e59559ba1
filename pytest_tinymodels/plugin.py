"""The pytest plugin: options, hooks and fixture registration.  All work is delegated to
:class:`pytest_tinymodels.session.TinySession`; nothing heavy is imported here."""

from __future__ import annotations

import json
import os
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from .cache import Cache
from .errors import ManifestError, TinyModelsError
from .manifest import Manifest, load_manifest
from .session import Setting, TinySession, default_manifest_file, human_size, resolve_cache_dir

SESSION_KEY = pytest.StashKey[TinySession]()
SETTINGS_KEY = pytest.StashKey[dict]()
LOCK_KEY = pytest.StashKey[Any]()  # the lockfile.Lock checked against, when --tiny-lock-check / tiny_lock
LOCK_RESULTS_KEY = pytest.StashKey[dict]()  # label -> "match" | "differs" | "unlocked"
WORKER_STATS_KEY = "tinymodels_stats"
WORKER_LOCK_KEY = "tinymodels_lock"
_merged_stats_key = pytest.StashKey[list]()
_merged_lock_key = pytest.StashKey[dict]()
GUARD_KEY = pytest.StashKey[Any]()  # the netguard.NetworkGuard, when the network guard is on
BLOCKED_KEY = pytest.StashKey[list]()  # (where, netguard.BlockedConnection) refused so far
KERNELS_KEY = pytest.StashKey[list]()  # [restore] of the session's hub-kernel switch, when it is on


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinymodels", "tiny Hugging Face model fixtures (pytest-tinymodels)")
    group.addoption("--tiny-manifest", metavar="PATH", default=None,
                    help="fixtures manifest (default: ini tiny_manifest, else fixtures.toml at the rootdir)")
    group.addoption("--tiny-cache-dir", metavar="PATH", default=None,
                    help="cache directory (default: env PYTEST_TINYMODELS_CACHE, ini tiny_cache_dir, user cache dir)")
    group.addoption("--tiny-rebuild", action="store_true", default=False,
                    help="rebuild every tiny entry the selected tests use (once per run, also under xdist)")
    group.addoption("--tiny-device", choices=("cpu", "cuda", "auto"), default=None,
                    help="load every tiny model on this device (overrides the manifest)")
    group.addoption("--tiny-dtype", choices=("float32", "float16", "bfloat16"), default=None,
                    help="build and load every tiny model in this dtype (overrides the manifest)")
    group.addoption("--tiny-arch", metavar="LIST", default=None,
                    help="comma-separated model types / class names (globs ok) to keep in parametrized fixtures")
    group.addoption("--tiny-strict", action="store_true", default=False,
                    help="an architecture that cannot be built fails its tests instead of skipping them")
    group.addoption("--tiny-lock-timeout", metavar="SECONDS", type=float, default=None,
                    help="give up waiting for another process's build after this long (default 900)")
    group.addoption("--tiny-lock-check", action="store_true", default=False,
                    help="check every built entry the tests use against the lock file (python -m pytest_tinymodels"
                         " lock); a test whose entry differs fails, naming the library versions that changed")
    group.addoption("--tiny-lock", metavar="PATH", default=None,
                    help="lock file to check against (implies --tiny-lock-check; default: ini tiny_lock, else"
                         " tinymodels.lock beside the manifest)")
    group.addoption("--tiny-hub", action="store_true", default=False,
                    help="serve tiny repos under Hub ids (declared hub ids, hf-internal-testing/tiny-random-<Class>...)"
                         " from a loopback server at HF_ENDPOINT for the session, built on first request")
    group.addoption("--tiny-hub-offline", action="store_true", default=False,
                    help="like --tiny-hub, but build the declared hub ids into an HF_HUB_CACHE up front and set"
                         " HF_HUB_OFFLINE=1 (no server; rule-derived ids only when declared)")
    group.addoption("--tiny-network-guard", action="store_true", default=None,
                    help="refuse any non-loopback connection during the session, naming what tried (ini tiny_network_guard)")
    group.addoption("--tiny-allow-network", action="store_true", default=False,
                    help="no network guard, also where ini tiny_network_guard = true")
    group.addoption("--tiny-allow-host", action="append", default=[], metavar="HOST",
                    help="with the network guard: also allow HOST (repeatable; ini tiny_allow_hosts)")
    group.addoption("--tiny-hub-kernels", action="store_true", default=None,
                    help="let transformers download and run Hugging Face hub kernels (default: off, as USE_HUB_KERNELS=NO)")
    parser.addini("tiny_network_guard", "refuse non-loopback network access during the session", type="bool", default=False)
    parser.addini("tiny_allow_hosts", "hosts the network guard allows besides loopback", type="linelist", default=[])
    parser.addini("tiny_hub_kernels", "let transformers use Hugging Face hub kernels", type="bool", default=False)
    parser.addini("tiny_manifest", "path of the tiny fixtures manifest (relative to the rootdir)", default=None)
    parser.addini("tiny_cache_dir", "tiny model cache directory", default=None)
    parser.addini("tiny_lock_timeout", "seconds to wait for another process's build", default="900")
    parser.addini("tiny_lock", "lock file checked in every run (relative to the rootdir; see --tiny-lock-check)",
                  default=None)
    parser.addini("tiny_hub", "serve tiny repos under Hub ids: true (= serve), offline or false", default="false")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Hermetic by default, before any conftest imports transformers: no hub kernels unless
    ``--tiny-hub-kernels`` / ini ``tiny_hub_kernels``; with ``--tiny-network-guard`` / ini
    ``tiny_network_guard``, any non-loopback connection is refused and reported."""
    from .netguard import DEFAULT_ALLOWED_HOSTS, NetworkGuard, disable_hub_kernels

    ns = early_config.known_args_namespace  # options are not parsed into getoption() yet
    kernels = ns.tiny_hub_kernels if ns.tiny_hub_kernels is not None else early_config.getini("tiny_hub_kernels")
    if not kernels:
        holder = [disable_hub_kernels()]  # a test marked tiny_hub_kernels swaps the restore (see below)
        early_config.stash[KERNELS_KEY] = holder
        early_config.add_cleanup(lambda: holder[0]())
    guard_on = ns.tiny_network_guard if ns.tiny_network_guard is not None else early_config.getini("tiny_network_guard")
    if guard_on and not ns.tiny_allow_network:
        hosts = (*DEFAULT_ALLOWED_HOSTS, *early_config.getini("tiny_allow_hosts"), *ns.tiny_allow_host)
        guard = NetworkGuard(hosts).install()
        early_config.stash[GUARD_KEY] = guard
        early_config.stash[BLOCKED_KEY] = []
        early_config.add_cleanup(guard.uninstall)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Attribute every refused connection to the test (or the collection) during which it happened; lift the
    session's network guard for a test marked ``tiny_allow_network`` and its hub-kernel switch for one
    marked ``tiny_hub_kernels`` (setup, call and teardown), restoring both afterwards."""
    guard = item.config.stash.get(GUARD_KEY, None)
    kernels = item.config.stash.get(KERNELS_KEY, None)
    lift_guard = guard is not None and item.get_closest_marker("tiny_allow_network") is not None
    lift_kernels = kernels is not None and item.get_closest_marker("tiny_hub_kernels") is not None
    if guard is not None:
        item.config.stash[BLOCKED_KEY].extend(("(collection / session)", b) for b in guard.take_blocked())
    if lift_guard:
        guard.uninstall()
    if lift_kernels:
        kernels[0]()
    try:
        return (yield)
    finally:
        if lift_kernels:
            from .netguard import disable_hub_kernels

            kernels[0] = disable_hub_kernels()
        if lift_guard:
            guard.install()
        if guard is not None:
            item.config.stash[BLOCKED_KEY].extend((item.nodeid, b) for b in guard.take_blocked())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tiny_allow_network: lift the tinymodels network guard for this test (it may use the network)"
    )
    config.addinivalue_line(
        "markers", "tiny_hub_kernels: let this test use Hugging Face hub kernels (lifts the plugin's kernel switch)"
    )
    cache_setting = resolve_cache_dir(
        config.getoption("tiny_cache_dir"), config.getini("tiny_cache_dir"), ini_base=config.rootpath
    )
    try:
        manifest, manifest_setting = _load_manifest(config, cache_setting.value)
    except ManifestError as exc:
        raise pytest.UsageError(f"pytest-tinymodels: {exc}") from None
    cache = Cache(cache_setting.value, lock_timeout=_lock_timeout(config), log=_make_logger(config))
    cache_warning = cache.prepare()  # read-only cache dir -> temporary fallback cache, announced in the header
    workerinput = getattr(config, "workerinput", None)
    run_id = (workerinput or {}).get("testrunuid") or os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    arch_filter = [a.strip() for a in (config.getoption("tiny_arch") or "").split(",") if a.strip()]
    session = TinySession(
        manifest,
        cache,
        rebuild=config.getoption("tiny_rebuild"),
        run_id=run_id,
        device=config.getoption("tiny_device"),
        dtype=config.getoption("tiny_dtype"),
        arch_filter=arch_filter,
    )
    config.stash[SESSION_KEY] = session
    config.stash[SETTINGS_KEY] = {"cache": cache_setting, "manifest": manifest_setting, "cache_warning": cache_warning}
    config.stash[LOCK_RESULTS_KEY] = {}
    lock_path = _lock_path(config, manifest_setting.value)
    if lock_path is not None:
        from .lockfile import LockFileError, read_lock

        try:
            config.stash[LOCK_KEY] = read_lock(lock_path)
        except LockFileError as exc:
            raise pytest.UsageError(f"pytest-tinymodels: {exc}") from None
    config.pluginmanager.register(_fixture_module(manifest), "tinymodels-fixtures")
    from .hub import plugin as hub_plugin  # --tiny-hub / ini tiny_hub: registers the hub's own hooks

    hub_plugin.configure(config, session, _make_logger(config))


def _lock_path(config: pytest.Config, manifest: Path | None) -> Path | None:
    """The lock file to check against: --tiny-lock, ini tiny_lock, or (--tiny-lock-check) the default; None
    when no check is asked for."""
    from .lockfile import default_lock_path

    if config.getoption("tiny_lock"):
        return Path(config.getoption("tiny_lock")).expanduser().resolve()
    if config.getini("tiny_lock"):
        return (config.rootpath / config.getini("tiny_lock")).resolve()
    if config.getoption("tiny_lock_check"):
        return default_lock_path(manifest, config.rootpath)
    return None


def _lock_timeout(config: pytest.Config) -> float:
    """--tiny-lock-timeout, else ini tiny_lock_timeout (seconds, >= 0; 0 = do not wait)."""
    value = config.getoption("tiny_lock_timeout")
    if value is None:
        raw = config.getini("tiny_lock_timeout") or "900"
        try:
            value = float(raw)
        except ValueError:
            raise pytest.UsageError(f"pytest-tinymodels: ini tiny_lock_timeout must be a number of seconds, got {raw!r}") from None
    if not value >= 0:
        raise pytest.UsageError(f"pytest-tinymodels: the lock timeout must be >= 0 seconds, got {value}")
    return float(value)


def _load_manifest(config: pytest.Config, cache_root: Path) -> tuple[Manifest, Setting]:
    cli, ini = config.getoption("tiny_manifest"), config.getini("tiny_manifest")
    if cli:
        path, source = Path(cli).expanduser().resolve(), "--tiny-manifest"
    elif ini:
        path, source = (config.rootpath / ini).resolve(), "ini tiny_manifest"
    else:
        path, source = default_manifest_file(config.rootpath), "rootdir"
    return load_manifest(path, memo_dir=cache_root), Setting(path, source if path else "built-in only")


def _make_logger(config: pytest.Config):
    def log(message: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and not hasattr(config, "workerinput"):
            reporter.write_line(f"[tinymodels] {message}", yellow=True)
        else:
            import sys

            print(f"[tinymodels] {message}", file=sys.stderr, flush=True)

    return log


def _fixture_module(manifest: Manifest) -> types.ModuleType:
    """A plugin module holding one function-scoped fixture per manifest entry."""
    module = types.ModuleType("pytest_tinymodels._fixtures")
    for name in manifest.names():
        setattr(module, name, _make_fixture(name, manifest[name].description))
    return module


def _make_fixture(name: str, description: str | None):
    def tiny_fixture(request: pytest.FixtureRequest) -> Any:
        return _fixture_value(request, name)

    tiny_fixture.__doc__ = description or f"Tiny model/tokenizer/dataset triple {name!r} (pytest-tinymodels)."
    tiny_fixture.__name__ = name
    return pytest.fixture(name=name)(tiny_fixture)


def _fixture_value(request: pytest.FixtureRequest, name: str) -> Any:
    session = request.config.stash[SESSION_KEY]
    variants = session.variants(name)
    variant_id = getattr(request, "param", None)
    if variant_id is None:
        if len(variants) != 1 or variants[0].id:
            raise pytest.UsageError(f"tiny fixture {name!r} is parametrized over architectures; request it from a test")
        variant = variants[0]
    else:
        variant = next(v for v in variants if v.id == variant_id)
    device = session.device or variant.spec.device
    if device.startswith("cuda"):
        from .loader import cuda_available

        if not cuda_available():
            pytest.skip(f"tiny fixture {name!r} needs CUDA (device={device!r}) and no GPU is available")
    try:
        loaded = session.load(variant, device=device)
        differs = _lock_difference(request.config, name, variant, loaded.entry)
        if differs is None:
            return loaded.fresh()
    except TinyModelsError as exc:
        error = exc
    else:
        pytest.fail(f"pytest-tinymodels: {differs}", pytrace=False)
    # outside the except block: the report shows our message, not a chain of tracebacks
    label = f"{name}[{variant.id}]" if variant.id else name
    if variant.id and not request.config.getoption("tiny_strict"):
        pytest.skip(f"{label} cannot be built: {_one_line(error)}")
    pytest.fail(
        f"pytest-tinymodels: {variant.spec.manifest}: tiny fixture {label} cannot be built:\n  {error}\n"
        f"  (full traceback: python -m pytest_tinymodels build {name}"
        f"{' --arch ' + variant.id if variant.id else ''} --traceback)",
        pytrace=False,
    )


def _lock_difference(config: pytest.Config, name: str, variant: Any, entry: Path) -> str | None:
    """With a lock file to check against: why ``entry`` differs from its record, or None (checked once
    per entry and session; entries the lock does not hold are counted, not failed)."""
    lock = config.stash.get(LOCK_KEY, None)
    if lock is None:
        return None
    from . import lockfile

    label = lockfile.label_of_variant(name, variant.id)
    results = config.stash[LOCK_RESULTS_KEY]
    known = results.get(label)
    if known is not None:
        return known[1]
    if not lockfile.is_locked(lock, label):
        results[label] = ("unlocked", None)
        return None
    session = config.stash[SESSION_KEY]
    libraries, builder = lockfile.current_stamps(session.cache.root)
    relock = "python -m pytest_tinymodels lock" + (f" --manifest {variant.spec.manifest}"
                                                   if variant.spec.manifest.name != "default_fixtures.toml" else "")
    relock += f" --arch {variant.id}" if variant.id else ""
    message = lockfile.check_entry(lock, label, lockfile.variant_state(session, variant, entry), libraries, builder,
                                   relock=relock)
    results[label] = ("differs" if message else "match", message)
    return message


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _tiny_names(config: pytest.Config, fixturenames: Any) -> list[str]:
    manifest = config.stash[SESSION_KEY].manifest
    return [n for n in fixturenames if n in manifest]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = metafunc.config.stash[SESSION_KEY]
    for name in _tiny_names(metafunc.config, metafunc.fixturenames):
        if not session.manifest[name].parametrized:
            continue
        if _defines_own_fixture(metafunc, name):
            continue
        try:
            variants = session.variants(name)
        except ManifestError:  # a usage error, raised by pytest_collection_modifyitems (here: a collection error)
            continue
        ids = [v.id for v in variants]
        if not ids:
            metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(
                reason=f"tiny fixture {name!r}: no architecture left after filters"))], indirect=True, ids=["none"])
            continue
        metafunc.parametrize(name, ids, indirect=True, ids=ids)


def _defines_own_fixture(metafunc: pytest.Metafunc, name: str) -> bool:
    """A conftest fixture of the same name shadows ours: leave it alone."""
    defs = metafunc._arg2fixturedefs.get(name) if hasattr(metafunc, "_arg2fixturedefs") else None
    if not defs:
        return False
    return getattr(defs[-1].func, "__module__", "") != __name__


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Validate every tiny fixture the selected tests use (model types, architectures, tasks)."""
    used: set[str] = set()
    for item in items:
        used.update(_tiny_names(config, getattr(item, "fixturenames", ())))
    tiny = config.stash[SESSION_KEY]
    for name in sorted(used):
        try:
            tiny.variants(name)
        except ManifestError as exc:
            raise pytest.UsageError(f"pytest-tinymodels: {exc}") from None
    unmatched = tiny.unmatched_arch_filters(sorted(used))
    if unmatched:
        from .build.architectures import did_you_mean

        parametrized = ", ".join(n for n in sorted(used) if tiny.manifest[n].parametrized)
        raise pytest.UsageError("pytest-tinymodels: " + "; ".join(
            f"--tiny-arch {pattern!r} matches no architecture of {parametrized}.{did_you_mean(pattern, known)}"
            for pattern, known in unmatched.items()))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A test asking for a fixture that does not exist gets pytest's error plus the closest tiny fixtures."""
    report = yield
    if call.when == "setup" and call.excinfo is not None and call.excinfo.errisinstance(pytest.FixtureLookupError):
        _add_fixture_suggestion(item.config, call.excinfo.value, report)
    return report


def _add_fixture_suggestion(config: pytest.Config, error: Any, report: pytest.TestReport) -> None:
    import difflib

    session = config.stash.get(SESSION_KEY, None)
    argname, longrepr = getattr(error, "argname", None), report.longrepr
    text = getattr(longrepr, "errorstring", None)
    if session is None or not isinstance(argname, str) or not isinstance(text, str) or argname in session.manifest:
        return
    first, _, rest = text.partition("\n")
    if f"fixture '{argname}' not found" not in first:
        return
    names = session.manifest.names()
    close = difflib.get_close_matches(argname, names, n=3, cutoff=0.8)
    if not close and not argname.startswith("tiny_"):
        return
    by_file: dict[Path, list[str]] = {path: [] for path in session.manifest.paths}  # built-ins first
    for name in names:
        by_file.setdefault(session.manifest[name].manifest, []).append(name)
    defined = "; ".join(
        f"{'built-in' if path.name == 'default_fixtures.toml' else path.name} defines: {', '.join(n[:12])}"
        f"{' ...' if len(n) > 12 else ''}" for path, n in by_file.items() if n)
    guess = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"no tiny fixture is named {argname!r}."
    longrepr.errorstring = f"{first}\npytest-tinymodels: {guess} ({defined})" + (f"\n{rest}" if rest else "")


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(SETTINGS_KEY, None)
    if not settings:
        return []
    cache, manifest = settings["cache"], settings["manifest"]
    tiny = config.stash[SESSION_KEY]
    lines = [
        f"tinymodels: cache {cache.value} (from {cache.source})",
        f"tinymodels: manifest {manifest.value or '(built-in only)'} ({len(tiny.manifest.fixtures)} fixtures)",
    ]
    if tiny.rebuild:
        lines.append("tinymodels: --tiny-rebuild: entries used by the selected tests are rebuilt once")
    if settings.get("cache_warning"):
        lines.append(f"tinymodels: WARNING: {settings['cache_warning']}")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None and SESSION_KEY in config.stash:
        workeroutput[WORKER_STATS_KEY] = json.dumps(config.stash[SESSION_KEY].stats_records())
        workeroutput[WORKER_LOCK_KEY] = json.dumps(config.stash.get(LOCK_RESULTS_KEY, {}))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect each worker's build/reuse records."""
    records = getattr(node, "workeroutput", {}).get(WORKER_STATS_KEY)
    if records:
        node.config.stash.setdefault(_merged_stats_key, []).extend(json.loads(records))
    locked = getattr(node, "workeroutput", {}).get(WORKER_LOCK_KEY)
    if locked:
        node.config.stash.setdefault(_merged_lock_key, {}).update(json.loads(locked))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    _guard_summary(terminalreporter, config)
    if SESSION_KEY not in config.stash:
        return
    _lock_summary(terminalreporter, config)
    records = list(config.stash[SESSION_KEY].stats_records()) + list(config.stash.get(_merged_stats_key, []))
    if not records:
        return
    merged: dict[str, dict[str, Any]] = {}
    for rec in records:
        prev = merged.get(rec["fixture"])
        if prev is None or (rec["built"] and not prev["built"]):
            merged[rec["fixture"]] = rec
    built = [r for r in merged.values() if r["built"]]
    reused = [r for r in merged.values() if not r["built"]]
    tr = terminalreporter
    tr.write_sep("-", "tiny models")
    for rec in sorted(merged.values(), key=lambda r: r["fixture"]):
        what = f"built in {rec['seconds']:.2f}s" if rec["built"] else "reused"
        extra = f", repaired: {rec['repaired']}" if rec.get("repaired") else ""
        waited = f", waited {rec['waited']:.1f}s" if rec.get("waited", 0) >= 0.5 else ""
        tr.write_line(f"{rec['fixture']:<40} {what:<16} {human_size(rec['size']):>9}  {rec['label']}{waited}{extra}")
    total = sum(r["seconds"] for r in built)
    tr.write_line(f"{len(built)} built ({total:.2f}s), {len(reused)} reused")


def _guard_summary(tr: Any, config: pytest.Config) -> None:
    """The "network guard" section: every connection attempt the guard refused, with where it came from."""
    guard = config.stash.get(GUARD_KEY, None)
    if guard is None:
        return
    records = config.stash[BLOCKED_KEY] + [("(collection / session)", b) for b in guard.take_blocked()]
    if records:
        tr.write_sep("-", "tinymodels network guard")
        tr.write_line(f"{len(records)} network access attempt(s) refused:", red=True)
        for where, attempt in records:
            tr.write_line(f"{where}: {attempt.describe()}")


def _lock_summary(tr: Any, config: pytest.Config) -> None:
    """The "tiny lock" section: entries that match the lock file, differ from it, or are not in it."""
    lock = config.stash.get(LOCK_KEY, None)
    if lock is None:
        return
    results = {**config.stash.get(_merged_lock_key, {}), **config.stash.get(LOCK_RESULTS_KEY, {})}
    by_status: dict[str, list[str]] = {"match": [], "differs": [], "unlocked": []}
    for label, (status, _message) in sorted(results.items()):
        by_status[status].append(label)
    tr.write_sep("-", "tiny lock")
    line = (f"{lock.path}: {len(by_status['match'])} entries match, {len(by_status['differs'])} differ"
            + (f" ({', '.join(by_status['differs'])})" if by_status["differs"] else ""))
    tr.write_line(line, red=bool(by_status["differs"]))
    if by_status["match"] and not by_status["differs"]:
        from .lockfile import changed_libraries, current_stamps

        changed = changed_libraries(lock.libraries, current_stamps(config.stash[SESSION_KEY].cache.root)[0])
        if changed:
            tr.write_line(f"library versions changed since the lock ({', '.join(changed)}); the entries used are "
                          "byte-identical to the locked ones")
    if by_status["unlocked"]:
        names = sorted({label.split("[")[0] for label in by_status["unlocked"]})
        tr.write_line(f"not in the lock, not checked: {', '.join(by_status['unlocked'])} "
                      f"(to lock them: python -m pytest_tinymodels lock {' '.join(names)})", yellow=True)
