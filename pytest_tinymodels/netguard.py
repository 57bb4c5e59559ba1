"""Hermetic sessions: no Hugging Face hub kernels unless opted in, and a guard against network access.

Two independent, process-wide switches (pure standard library at import time):

* :func:`hub_kernels_disabled` / :func:`disable_hub_kernels` make transformers (5.x) use no hub kernels.
  ``USE_HUB_KERNELS=NO`` is read by transformers at *call* time (``hub_kernels._kernels_enabled``), so the
  environment variable alone gates ``from_pretrained``'s default ``kernelize``, ``set_use_kernels``,
  ``kernelize`` and ``lazy_load_kernel``. Several paths ignore it and call ``get_kernel`` directly (attention
  kernels and the flash-attention fallback, RWKV / YOSO / MRA CUDA kernels, SAM3-video post-processing,
  quantization integrations, and ``is_flash_attn_available(kernels_fallback_ok=True)``, which GPT-Neo and
  Bark call when their module is *imported*, on any device). Those all end in ``kernels.get_kernel``
  (bound in ``transformers.integrations.hub_kernels`` as ``get_kernel_hub``), which the switch replaces by
  a function raising :class:`HubKernelsDisabledError` (an ``ImportError``): the probing callers take it as
  "kernel unavailable" and use their PyTorch path, an explicitly requested kernel (``attn_implementation=
  "kernels-community/..."``) fails with its message. If ``kernels`` is not imported yet, an import hook
  applies the patch right after it is.
* :func:`network_guard` turns every non-loopback TCP/UDP connect and every resolution of a non-loopback
  host name into :class:`NetworkAccessError`, which names the host, the port and the code that asked
  (the first frame outside the socket / HTTP / hub-client plumbing, and the suite's own frame that led
  there when that caller is a library).

Both restore everything they changed when they end.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import ipaddress
import os
import socket
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from pytest_tinymodels.errors import TinyModelsError

__all__ = [
    "ALLOW_NETWORK_OPTION",
    "DEFAULT_ALLOWED_HOSTS",
    "HUB_KERNELS_OPTION",
    "BlockedConnection",
    "HubKernelsDisabledError",
    "NetworkAccessError",
    "NetworkGuard",
    "disable_hub_kernels",
    "hub_kernels_disabled",
    "hub_kernels_switch_active",
    "network_guard",
]

#: Command-line option that lifts the network guard (named in every :class:`NetworkAccessError`).
ALLOW_NETWORK_OPTION = "--tiny-allow-network"
#: Command-line option that lets transformers use hub kernels (named in :class:`HubKernelsDisabledError`).
HUB_KERNELS_OPTION = "--tiny-hub-kernels"
#: Hosts a guard allows by default; loopback and unspecified addresses are always allowed.
DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")

_ENV = "USE_HUB_KERNELS"


# --------------------------------------------------------------------------------------------------
# Hub kernels
# --------------------------------------------------------------------------------------------------


class HubKernelsDisabledError(TinyModelsError, ImportError):
    """A hub kernel was requested while pytest-tinymodels keeps the session free of hub kernels.

    An ``ImportError``: where transformers only probes for a kernel it falls back to PyTorch.
    """


def _blocked_get_kernel(*args: Any, **kwargs: Any) -> types.ModuleType:
    """Stand-in for ``kernels.get_kernel`` while hub kernels are disabled: fetches nothing, raises."""
    repo_id = args[0] if args else kwargs.get("repo_id", "<unknown>")
    raise HubKernelsDisabledError(
        f"hub kernel {repo_id!r} was not loaded: pytest-tinymodels disables Hugging Face hub kernels "
        f"({_ENV}=NO) so that tiny models never download and run code from the Hub; the PyTorch "
        f"implementation is used instead. To use hub kernels, run pytest with {HUB_KERNELS_OPTION} "
        "(ini: tiny_hub_kernels = true)."
    )


# (module, attribute) holding the function that fetches a kernel from the Hub.
_KERNEL_SITES: tuple[tuple[str, str], ...] = (
    ("kernels", "get_kernel"),  # `from kernels import get_kernel` (transformers/utils/import_utils.py)
    ("transformers.integrations.hub_kernels", "get_kernel_hub"),  # every transformers `get_kernel(...)`
)
# lru-cached answers that depend on whether a flash-attention kernel can be fetched.
_IMPORT_UTILS = "transformers.utils.import_utils"
_FLASH_CACHES = ("is_flash_attn_2_available", "is_flash_attn_3_available", "is_flash_attn_4_available")


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Runs ``callback(module)`` right after the module ``name`` is first executed."""

    def __init__(self, name: str, callback: Callable[[types.ModuleType], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _CallbackLoader(spec.loader, self.callback)
            return spec
        return None


class _CallbackLoader(importlib.abc.Loader):
    """Delegates to ``loader`` and calls ``callback(module)`` after ``exec_module``."""

    def __init__(self, loader: Any, callback: Callable[[types.ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        self._callback(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_source, ...
        return getattr(self._loader, name)


class _KernelSwitch:
    """The process-wide hub-kernel switch; reference counted so that nested users compose."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._env_before: str | None = None
        self._originals: dict[tuple[str, str], Any] = {}
        self._finder: _PatchAfterImport | None = None

    @property
    def active(self) -> bool:
        return self._depth > 0

    def acquire(self) -> Callable[[], None]:
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._enable()
        released = False

        def restore() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._depth -= 1
                if self._depth == 0:
                    self._disable()

        return restore

    def _enable(self) -> None:
        self._env_before = os.environ.get(_ENV)
        os.environ[_ENV] = "NO"
        self._originals = {}
        for site in _KERNEL_SITES:
            self._patch_site(site)
        if "kernels" not in sys.modules:
            self._finder = _PatchAfterImport("kernels", lambda module: self._patch_site(("kernels", "get_kernel")))
            sys.meta_path.insert(0, self._finder)
        _clear_flash_caches()

    def _patch_site(self, site: tuple[str, str]) -> None:
        with self._lock:
            module = sys.modules.get(site[0])
            if module is None or self._depth == 0:
                return
            current = getattr(module, site[1], None)
            if current is None or current is _blocked_get_kernel:
                return
            self._originals[site] = current
            setattr(module, site[1], _blocked_get_kernel)

    def _disable(self) -> None:
        if self._finder is not None:
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
        real = self._originals.get(("kernels", "get_kernel"))
        blocker = _blocked_get_kernel
        for name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if name == __name__ or not isinstance(namespace, dict):
                continue
            for attr, value in list(namespace.items()):
                if value is blocker:
                    # a site patched on entry gets its own original back; a name bound to the stand-in
                    # while the switch was on (`from kernels import get_kernel`) gets the real function
                    original = self._originals.get((name, attr), real)
                    if original is not None:
                        setattr(module, attr, original)
        self._originals = {}
        if os.environ.get(_ENV) == "NO":
            if self._env_before is None:
                os.environ.pop(_ENV, None)
            else:
                os.environ[_ENV] = self._env_before
        _clear_flash_caches()


def _clear_flash_caches() -> None:
    """Forget transformers' cached ``is_flash_attn_*_available`` answers (they may have used a kernel)."""
    import_utils = sys.modules.get(_IMPORT_UTILS)
    if import_utils is None:
        return
    for name in _FLASH_CACHES:
        cache_clear = getattr(getattr(import_utils, name, None), "cache_clear", None)
        if callable(cache_clear):
            cache_clear()


_SWITCH = _KernelSwitch()


def disable_hub_kernels() -> Callable[[], None]:
    """Make transformers use no hub kernels until the returned callable is called (idempotent).

    Sets ``USE_HUB_KERNELS=NO`` and replaces ``kernels.get_kernel`` (also as transformers'
    ``hub_kernels.get_kernel_hub``) with a function raising :class:`HubKernelsDisabledError`; works whether
    or not transformers / kernels are imported yet. Calls nest: the last restore undoes the changes.
    """
    return _SWITCH.acquire()


@contextmanager
def hub_kernels_disabled() -> Iterator[None]:
    """Context manager form of :func:`disable_hub_kernels`."""
    restore = disable_hub_kernels()
    try:
        yield
    finally:
        restore()


def hub_kernels_switch_active() -> bool:
    """Whether :func:`disable_hub_kernels` is in effect in this process."""
    return _SWITCH.active


# --------------------------------------------------------------------------------------------------
# Network guard
# --------------------------------------------------------------------------------------------------

# Frames of these modules are plumbing: the reported caller is the first frame outside them.
_PLUMBING: tuple[str, ...] = (
    "socket", "ssl", "selectors", "http", "urllib", "urllib3", "requests", "httpx", "httpx2", "httpcore",
    "httpcore2", "h11", "h2", "anyio", "asyncio", "concurrent", "threading", "contextlib", "functools",
    "importlib", "huggingface_hub", "hf_xet", "kernels", "aiohttp", "fsspec", __name__,
)  # fmt: skip


class BlockedConnection(NamedTuple):
    """One connection attempt the guard refused."""

    host: str
    port: int | None
    action: str  # "connect" or "resolve"
    caller: str  # "transformers/utils/import_utils.py:1315 in is_flash_attn_kernel_fallback_available"
    via: str | None  # the first plumbing frame the caller called, e.g. "kernels/_internals/load.py:194 in get_kernel"
    origin: str | None  # where a library caller was called from: the innermost frame of the suite's own code
    thread: str

    @property
    def target(self) -> str:
        """``host:port`` (IPv6 hosts in brackets), or the host alone."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def describe(self) -> str:
        """One line: what was attempted and by whom."""
        what = "connection to" if self.action == "connect" else "name resolution of"
        via = f" (via {self.via})" if self.via else ""
        origin = f", reached from {self.origin}" if self.origin else ""
        thread = "" if self.thread == "MainThread" else f" [thread {self.thread}]"
        return f"{what} {self.target} from {self.caller}{via}{origin}{thread}"


class NetworkAccessError(TinyModelsError):
    """A non-loopback connection attempted while the network guard is on.

    Deliberately *not* an ``OSError``: HTTP stacks turn an ``OSError`` from a connect into their own
    connection error, which huggingface_hub retries with back-off (5 retries, about 23 s per request)
    and reports as "cannot find the requested files in the local cache", with the guard's message
    deep in the chain. As a plain exception it passes through urllib3 / httpx / huggingface_hub at once,
    as itself. Code that swallows every exception still does, so each refusal is also recorded
    (:attr:`NetworkGuard.blocked`). For cache-only runs set ``HF_HUB_OFFLINE=1``.
    """

    def __init__(self, attempt: BlockedConnection, hint: str) -> None:
        self.attempt = attempt
        super().__init__(f"network access blocked by pytest-tinymodels: {attempt.describe()}. {hint}")


DEFAULT_HINT = (
    "Tiny fixtures never need the network. To allow it, run pytest with "
    f"{ALLOW_NETWORK_OPTION}, or allow this host with --tiny-allow-host=HOST (ini: tiny_allow_hosts)."
)


def _short_path(filename: str) -> str:
    """``filename`` relative to its site-packages, else the working directory, else its sys.path entry."""
    path = os.path.abspath(filename)
    entries = sorted({os.path.abspath(p or os.curdir) for p in sys.path if isinstance(p, str)}, key=len, reverse=True)
    packages = [e for e in entries if os.path.basename(e) in ("site-packages", "dist-packages")]
    for root in [*packages, os.getcwd(), *entries]:
        prefix = root.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _is_plumbing(module_name: str) -> bool:
    return any(module_name == p or module_name.startswith(p + ".") for p in _PLUMBING)


def _describe_frame(frame: types.FrameType) -> str:
    return f"{_short_path(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get("stdlib"), paths.get("platstdlib"), paths.get("purelib"), paths.get("platlib")}
    roots.update(p for p in sys.path if isinstance(p, str) and os.path.basename(p) in ("site-packages", "dist-packages"))
    return tuple(os.path.abspath(r).rstrip(os.sep) + os.sep for r in roots if r)


def _is_project(filename: str) -> bool:
    """Code of the suite itself: under the working directory and not an installed library there."""
    if filename.startswith("<"):
        return filename in ("<stdin>", "<string>")  # not "<frozen importlib._bootstrap>"
    path = os.path.abspath(filename)
    return path.startswith(os.getcwd().rstrip(os.sep) + os.sep) and not path.startswith(_library_roots())


def _find_origin(frame: types.FrameType | None) -> str | None:
    """The innermost frame of the suite's own code at or above ``frame``."""
    while frame is not None:
        if _is_project(frame.f_code.co_filename):
            return _describe_frame(frame)
        frame = frame.f_back
    return None


def _find_caller(frame: types.FrameType | None) -> tuple[str, str | None, str | None]:
    """(first frame outside the network plumbing, the plumbing frame it called, the suite's frame)."""
    callee: types.FrameType | None = None
    innermost: types.FrameType | None = None
    while frame is not None:
        name = frame.f_globals.get("__name__", "") or ""
        if not _is_plumbing(name):
            via = _describe_frame(callee) if callee is not None else None
            origin = None if _is_project(frame.f_code.co_filename) else _find_origin(frame.f_back)
            return _describe_frame(frame), via, origin
        if name != __name__:
            innermost = innermost or frame
            callee = frame
        frame = frame.f_back
    # only plumbing on this stack (e.g. a worker thread): name the outermost library frame
    if callee is not None:
        return _describe_frame(callee), (_describe_frame(innermost) if innermost is not callee else None), None
    return "<unknown>", None, None


def _host_text(host: Any) -> str:
    if isinstance(host, bytes | bytearray):
        try:
            host = bytes(host).decode("idna")
        except UnicodeError:
            host = bytes(host).decode("ascii", errors="replace")
    text = str(host).strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text.split("%", 1)[0]  # drop an IPv6 zone id


def _is_local_ip(host: str) -> bool | None:
    """True for loopback / unspecified addresses, False for other addresses, None for a host name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_loopback or ip.is_unspecified


_GUARDED_FAMILIES = frozenset(
    f for f in (getattr(socket, "AF_INET", None), getattr(socket, "AF_INET6", None)) if f is not None
)


class NetworkGuard:
    """Refuses non-loopback connections and host-name resolutions while installed.

    Patches ``socket.socket.connect`` / ``connect_ex``, ``socket.create_connection`` and
    ``socket.getaddrinfo`` for every thread of the process. Allowed: Unix and other non-IP sockets,
    loopback and unspecified addresses, the names in ``allow_hosts`` and the addresses they resolve to.
    Each refusal raises :class:`NetworkAccessError` and is appended to :attr:`blocked`, also when the
    library that asked swallows the error. Guards stack; uninstall them in reverse order.
    Limits: UDP ``sendto`` without ``connect`` and native extensions doing their own I/O are not seen.
    """

    def __init__(self, allow_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS, *, hint: str = DEFAULT_HINT) -> None:
        self.allow_hosts: frozenset[str] = frozenset(_host_text(h) for h in allow_hosts)
        self.hint = hint
        self.blocked: list[BlockedConnection] = []
        self._resolved: set[str] = set()
        self._lock = threading.Lock()
        self._saved: list[tuple[Any, str, bool, Any]] = []
        self._wrappers: dict[tuple[int, str], Any] = {}

    # -- policy -------------------------------------------------------------------------------
    def is_allowed(self, host: Any) -> bool:
        """Whether connecting to / resolving ``host`` is allowed (``None`` means a local bind address)."""
        if host is None:
            return True
        text = _host_text(host)
        if text == "" or text in self.allow_hosts or text in self._resolved:
            return True
        return bool(_is_local_ip(text))

    def take_blocked(self) -> list[BlockedConnection]:
        """Return the refusals recorded so far and forget them."""
        with self._lock:
            taken, self.blocked = self.blocked, []
        return taken

    def _refuse(self, host: Any, port: Any, action: str) -> NetworkAccessError:
        caller, via, origin = _find_caller(sys._getframe(1))
        attempt = BlockedConnection(
            host=_host_text(host),
            port=port if isinstance(port, int) else (int(port) if str(port).isdigit() else None),
            action=action,
            caller=caller,
            via=via,
            origin=origin,
            thread=threading.current_thread().name,
        )
        with self._lock:
            self.blocked.append(attempt)
        return NetworkAccessError(attempt, self.hint)

    # -- install / uninstall ----------------------------------------------------------------------
    @property
    def installed(self) -> bool:
        return bool(self._saved)

    def install(self) -> NetworkGuard:
        """Patch the socket module; returns ``self``."""
        if self._saved:
            raise RuntimeError("this NetworkGuard is already installed")
        guard = self
        orig_connect = socket.socket.connect
        orig_connect_ex = socket.socket.connect_ex
        orig_create_connection = socket.create_connection
        orig_getaddrinfo = socket.getaddrinfo

        def connect(sock: socket.socket, address: Any) -> None:
            guard._check_socket(sock, address)
            return orig_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard._check_socket(sock, address)
            return orig_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            host, port = address[0], address[1]
            if not guard.is_allowed(host):
                raise guard._refuse(host, port, "connect")
            return orig_create_connection(address, *args, **kwargs)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
            if not guard.is_allowed(host):
                raise guard._refuse(host, port, "resolve")
            result = orig_getaddrinfo(host, port, *args, **kwargs)
            text = _host_text(host) if host is not None else ""
            if text in guard.allow_hosts and _is_local_ip(text) is None:
                with guard._lock:
                    guard._resolved.update(_host_text(info[4][0]) for info in result if info[4])
            return result

        self._patch(socket.socket, "connect", connect)
        self._patch(socket.socket, "connect_ex", connect_ex)
        self._patch(socket, "create_connection", create_connection)
        self._patch(socket, "getaddrinfo", getaddrinfo)
        return self

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        had_own = name in vars(owner)
        self._saved.append((owner, name, had_own, vars(owner).get(name)))
        self._wrappers[(id(owner), name)] = value
        setattr(owner, name, value)

    def uninstall(self) -> None:
        """Undo :meth:`install` (no-op if not installed)."""
        if not self._saved:
            return
        for owner, name, _, _ in self._saved:
            if vars(owner).get(name) is not self._wrappers[(id(owner), name)]:
                raise RuntimeError(
                    f"cannot uninstall the network guard: {getattr(owner, '__name__', owner)}.{name} was "
                    "patched again after it was installed (uninstall guards in reverse order)"
                )
        for owner, name, had_own, old in reversed(self._saved):
            if had_own:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
        self._saved.clear()
        self._wrappers.clear()

    def __enter__(self) -> NetworkGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _check_socket(self, sock: socket.socket, address: Any) -> None:
        if sock.family not in _GUARDED_FAMILIES or not isinstance(address, Sequence) or isinstance(address, str):
            return
        if len(address) >= 2 and not self.is_allowed(address[0]):
            raise self._refuse(address[0], address[1], "connect")


@contextmanager
def network_guard(
    allow_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS, *, hint: str = DEFAULT_HINT
) -> Iterator[NetworkGuard]:
    """Refuse every non-loopback connection inside the block; yields the :class:`NetworkGuard`."""
    guard = NetworkGuard(allow_hosts, hint=hint)
    guard.install()
    try:
        yield guard
    finally:
        guard.uninstall()
