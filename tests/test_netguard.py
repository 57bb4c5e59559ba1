"""netguard: the network guard (real sockets, no mocks) and the hub-kernel switch of transformers 5.x.

Non-loopback targets are 10.255.255.1 (a non-routable address) and example.com; with the guard on they
are refused before any packet leaves. Where a test proves that the guard is *not* in the way, the
connect gets a short timeout, so the test is quick with or without a network.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tinymodels.errors import TinyModelsError
from pytest_tinymodels.netguard import (
    ALLOW_NETWORK_OPTION,
    HUB_KERNELS_OPTION,
    HubKernelsDisabledError,
    NetworkAccessError,
    NetworkGuard,
    disable_hub_kernels,
    hub_kernels_disabled,
    hub_kernels_switch_active,
    network_guard,
)

FAR = "10.255.255.1"


def _socket_state() -> tuple[Any, ...]:
    return (
        vars(socket.socket).get("connect"),
        vars(socket.socket).get("connect_ex"),
        socket.create_connection,
        socket.getaddrinfo,
    )


def _line_after() -> int:
    """The number of the line after the caller's line."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


# These tests install and check guards and the kernel switch themselves: the session's own guard and switch
# (pyproject.toml turns the guard on for this suite) are lifted for them by the plugin's markers.
pytestmark = [pytest.mark.tiny_allow_network, pytest.mark.tiny_hub_kernels]

@pytest.fixture
def echo_server() -> Iterator[int]:
    """A loopback TCP server on 127.0.0.1 that answers each connection with b'ok'."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    thread.join(5)


# --------------------------------------------------------------------------------------------------
# network guard
# --------------------------------------------------------------------------------------------------


def test_error_is_a_connection_error_of_the_package() -> None:
    assert issubclass(NetworkAccessError, TinyModelsError)
    # not an OSError: HTTP stacks would wrap it into their connection errors and hub clients retry those
    assert not issubclass(NetworkAccessError, OSError)
    assert issubclass(HubKernelsDisabledError, TinyModelsError)
    assert issubclass(HubKernelsDisabledError, ImportError)


def test_blocks_tcp_connect_and_names_host_port_and_calling_frame() -> None:
    with network_guard() as guard:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.5)
        with pytest.raises(NetworkAccessError) as excinfo:
            line = _line_after()
            sock.connect((FAR, 80))
        sock.close()
    message = str(excinfo.value)
    assert f"connection to {FAR}:80" in message
    assert f"test_netguard.py:{line} in test_blocks_tcp_connect_and_names_host_port_and_calling_frame" in message
    assert ALLOW_NETWORK_OPTION in message
    assert excinfo.value.attempt.host == FAR and excinfo.value.attempt.port == 80
    assert guard.blocked == [excinfo.value.attempt]


def test_blocks_connect_ex_and_create_connection() -> None:
    with network_guard() as guard:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.5)
        with pytest.raises(NetworkAccessError):
            sock.connect_ex((FAR, 443))
        sock.close()
        with pytest.raises(NetworkAccessError, match=f"connection to {FAR}:9 "):
            socket.create_connection((FAR, 9), timeout=0.5)
        with pytest.raises(NetworkAccessError, match=r"connection to example\.com:443 "):
            socket.create_connection(("example.com", 443), timeout=0.5)
    assert [(b.host, b.port, b.action) for b in guard.blocked] == [
        (FAR, 443, "connect"),
        (FAR, 9, "connect"),
        ("example.com", 443, "connect"),
    ]


def test_blocks_name_resolution_of_non_loopback_names() -> None:
    with network_guard() as guard:
        with pytest.raises(NetworkAccessError, match=r"name resolution of example\.com:443 from .*test_netguard\.py"):
            socket.getaddrinfo("example.com", 443)
        with pytest.raises(NetworkAccessError):
            socket.getaddrinfo(b"huggingface.co", "https")
        # loopback names and addresses, and passive (bind) lookups, still resolve
        assert socket.getaddrinfo("localhost", 80)
        assert socket.getaddrinfo("127.0.0.1", 80)
        assert socket.getaddrinfo(None, 0, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    assert [(b.host, b.action) for b in guard.blocked] == [("example.com", "resolve"), ("huggingface.co", "resolve")]
    assert guard.blocked[1].port is None  # a service name, not a number


def test_allows_loopback_server(echo_server: int) -> None:
    with network_guard() as guard:
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, echo_server), timeout=5) as conn:
                assert conn.recv(2) == b"ok"
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(5)
        raw.connect(("127.0.0.1", echo_server))
        assert raw.recv(2) == b"ok"
        raw.close()
    assert guard.blocked == []


def test_urlopen_through_loopback_http_server_is_allowed(tmp_path: Path) -> None:
    import http.server

    (tmp_path / "hello.txt").write_text("hello")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with network_guard() as guard:
            url = f"http://127.0.0.1:{server.server_address[1]}/hello.txt"
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.read() == b"hello"
    finally:
        server.shutdown()
        server.server_close()
    assert guard.blocked == []


def test_allows_unix_sockets(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    with network_guard() as guard:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        conn, _ = server.accept()
        conn.sendall(b"x")
        assert client.recv(1) == b"x"
        conn.close()
        client.close()
    server.close()
    assert guard.blocked == []


def test_allow_hosts_lets_a_named_host_through() -> None:
    with network_guard(allow_hosts=("127.0.0.1", FAR)) as guard:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.3)
        _, error = _call(lambda: sock.connect((FAR, 9)))  # the real network answers (or times out)
        sock.close()
        assert not isinstance(error, NetworkAccessError)
        with pytest.raises(NetworkAccessError):
            socket.create_connection(("10.255.255.2", 9), timeout=0.3)
    assert [b.host for b in guard.blocked] == ["10.255.255.2"]


def test_restores_socket_module_on_exit_and_on_error() -> None:
    before = _socket_state()
    assert before[0] is None and before[1] is None  # socket.socket inherits connect from _socket
    with network_guard():
        assert _socket_state() != before
    assert _socket_state() == before
    with pytest.raises(RuntimeError, match="boom"):
        with network_guard():
            raise RuntimeError("boom")
    assert _socket_state() == before
    assert "connect" not in vars(socket.socket)


def test_guards_stack_and_must_be_uninstalled_in_reverse_order() -> None:
    before = _socket_state()
    outer = NetworkGuard().install()
    inner = NetworkGuard().install()
    with pytest.raises(NetworkAccessError):
        socket.create_connection((FAR, 9), timeout=0.3)
    assert len(inner.blocked) == 1 and outer.blocked == []  # the innermost guard refuses first
    with pytest.raises(RuntimeError, match="reverse order"):
        outer.uninstall()
    inner.uninstall()
    with pytest.raises(NetworkAccessError):
        socket.create_connection((FAR, 9), timeout=0.3)
    assert len(outer.blocked) == 1
    outer.uninstall()
    assert _socket_state() == before


def test_swallowed_attempt_is_recorded_with_its_caller() -> None:
    with network_guard() as guard:
        try:
            line = _line_after()
            urllib.request.urlopen(f"http://{FAR}:8080/x", timeout=0.5)
        except Exception:  # noqa: BLE001 - what a library that degrades gracefully does
            pass
    (attempt,) = guard.take_blocked()
    assert attempt.target == f"{FAR}:8080"
    assert attempt.caller.endswith(f"test_netguard.py:{line} in test_swallowed_attempt_is_recorded_with_its_caller")
    assert attempt.via is not None and attempt.via.startswith("urllib/request.py:")
    assert guard.blocked == []


def test_library_caller_is_named_with_the_suite_frame_that_reached_it() -> None:
    import smtplib

    with network_guard() as guard:
        with pytest.raises(NetworkAccessError) as excinfo:
            line = _line_after()
            smtplib.SMTP(FAR, 25, timeout=0.5)
    attempt = excinfo.value.attempt
    assert attempt.caller.startswith("smtplib.py:"), attempt
    assert attempt.via is None, attempt  # smtplib calls socket.create_connection itself
    assert attempt.origin is not None
    assert attempt.origin.endswith(f"test_netguard.py:{line} in test_library_caller_is_named_with_the_suite_frame_that_reached_it")
    assert f", reached from {attempt.origin}" in str(excinfo.value)
    assert guard.blocked == [attempt]


def test_import_time_attempt_of_a_library_names_the_importing_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like GPT-Neo's flash-attention probe: a library connects while it is imported."""
    (tmp_path / "probing_library_xyz.py").write_text(
        "import socket\ntry:\n    socket.create_connection(('10.255.255.1', 9), timeout=0.5)\nexcept Exception:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "probing_library_xyz", raising=False)
    with network_guard() as guard:
        line = _line_after()
        import probing_library_xyz  # noqa: F401
    (attempt,) = guard.blocked
    assert attempt.caller.endswith("probing_library_xyz.py:3 in <module>"), attempt
    assert attempt.origin is not None, attempt  # not "<frozen importlib._bootstrap>"
    assert attempt.origin.endswith(f"test_netguard.py:{line} in test_import_time_attempt_of_a_library_names_the_importing_line")


def test_attempt_from_another_thread_is_blocked_and_names_the_thread() -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            socket.create_connection((FAR, 9), timeout=0.3)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    with network_guard() as guard:
        thread = threading.Thread(target=worker, name="fetcher")
        thread.start()
        thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], NetworkAccessError)
    assert "[thread fetcher]" in str(errors[0])
    assert "in worker" in guard.blocked[0].caller


HUB_CHILD = """
import json, sys, time
from huggingface_hub import hf_hub_download
from pytest_tinymodels.netguard import NetworkAccessError, network_guard

def chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen

def main():
    with network_guard() as guard:
        start = time.monotonic()
        try:
            hf_hub_download("org/x", "config.json", cache_dir=sys.argv[1])
        except Exception as exc:
            found = [e for e in chain(exc) if isinstance(e, NetworkAccessError)]
            result = {"raised": type(exc).__name__, "guard_error": str(found[0]) if found else None}
        else:
            result = {"raised": None, "guard_error": None}
        result["seconds"] = time.monotonic() - start
        result["blocked"] = [[b.target, b.caller, b.via] for b in guard.blocked]
    print(json.dumps(result))

main()
"""


def test_hf_hub_download_to_a_non_loopback_endpoint_fails_with_the_guard_error(tmp_path: Path) -> None:
    script = tmp_path / "hub_child.py"
    script.write_text(HUB_CHILD)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))}
    env.update(HF_ENDPOINT=f"http://{FAR}:9", HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["raised"] == "NetworkAccessError", result  # itself, not wrapped by the HTTP client
    assert result["seconds"] < 10, result  # and at once: no retries with back-off
    assert f"connection to {FAR}:9 from hub_child.py:" in result["guard_error"]
    assert "via huggingface_hub/" in result["guard_error"]
    targets = {target for target, _, _ in result["blocked"]}
    assert targets == {f"{FAR}:9"}, result["blocked"]  # nothing else (e.g. huggingface.co) was tried
    assert all(caller.startswith("hub_child.py:") for _, caller, _ in result["blocked"])


# --------------------------------------------------------------------------------------------------
# hub-kernel switch (transformers 5.x)
# --------------------------------------------------------------------------------------------------


class FetchRecorder:
    """Stands in for ``kernels.get_kernel``: records the repository it was asked for, fetches nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, repo_id: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(repo_id)
        raise FileNotFoundError(f"test stand-in: {repo_id} would have been fetched from the Hub")


@pytest.fixture
def fetch(monkeypatch: pytest.MonkeyPatch) -> Iterator[FetchRecorder]:
    """Replace the fetching function at both places transformers reaches it; no network either way."""
    pytest.importorskip("kernels")
    import kernels
    from transformers.integrations import hub_kernels
    from transformers.utils import import_utils

    if not hasattr(hub_kernels, "get_kernel_hub"):
        pytest.skip("transformers does not see a compatible `kernels` package")
    recorder = FetchRecorder()
    monkeypatch.setattr(kernels, "get_kernel", recorder)
    monkeypatch.setattr(hub_kernels, "get_kernel_hub", recorder)
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    for name in ("is_flash_attn_2_available", "is_flash_attn_3_available", "is_flash_attn_4_available"):
        getattr(import_utils, name).cache_clear()
    with network_guard() as guard:
        yield recorder
    assert guard.blocked == [], [b.describe() for b in guard.blocked]
    for name in ("is_flash_attn_2_available", "is_flash_attn_3_available", "is_flash_attn_4_available"):
        getattr(import_utils, name).cache_clear()


def _call(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return None, exc


def _lazy_load(repo: str) -> Callable[[], Any]:
    def call() -> Any:
        from transformers.integrations.hub_kernels import lazy_load_kernel

        return lazy_load_kernel(repo, mapping={})

    return call


def _attn_kernel() -> Any:
    from transformers.integrations.hub_kernels import load_and_register_attn_kernel

    return load_and_register_attn_kernel("kernels-community/flash-attn2")


def _flash_fallback() -> Any:
    from transformers.utils.import_utils import is_flash_attn_2_available

    return is_flash_attn_2_available(kernels_fallback_ok=True)


def _model_loader(module: str, function: str, *args: Any) -> Callable[[], Any]:
    def call() -> Any:
        import importlib

        return getattr(importlib.import_module(module), function)(*args)

    return call


KERNEL_PATHS = {
    # gated by USE_HUB_KERNELS (hub_kernels.lazy_load_kernel)
    "lazy_load_kernel": (_lazy_load("finegrained-fp8"), "kernels-community/finegrained-fp8"),
    # not gated: attention kernels (attn_implementation="kernels-community/..." or a flash fallback)
    "attention_kernel": (_attn_kernel, "kernels-community/flash-attn2"),
    # not gated: what GPT-Neo / Bark run when imported (is_flash_attn_available(kernels_fallback_ok=True))
    "flash_fallback_probe": (_flash_fallback, None),
    # not gated: CUDA kernels the attention layers of RWKV / YOSO / MRA load in __init__ on a GPU
    "rwkv": (_model_loader("transformers.models.rwkv.modeling_rwkv", "load_wkv_cuda_kernel", 16), "kernels-community/rwkv"),
    "yoso": (_model_loader("transformers.models.yoso.modeling_yoso", "load_cuda_kernels"), "kernels-community/yoso"),
    "mra": (_model_loader("transformers.models.mra.modeling_mra", "load_cuda_kernels"), "kernels-community/mra"),
}  # fmt: skip


@pytest.mark.parametrize("path", list(KERNEL_PATHS))
def test_kernel_path_fetches_without_the_switch(path: str, fetch: FetchRecorder) -> None:
    """The control: each path really asks for a hub kernel when the switch is off (on CPU too)."""
    call, repo = KERNEL_PATHS[path]
    _call(call)
    assert fetch.calls, f"{path} did not try to fetch a kernel: the switch test below would prove nothing"
    if repo is not None:
        assert fetch.calls[0] == repo


@pytest.mark.parametrize("path", list(KERNEL_PATHS))
def test_kernel_path_fetches_nothing_with_the_switch(path: str, fetch: FetchRecorder) -> None:
    call, _ = KERNEL_PATHS[path]
    with hub_kernels_disabled():
        result, error = _call(call)
    assert fetch.calls == []
    if error is not None:  # the direct loaders surface the switch's own, explanatory error
        assert HUB_KERNELS_OPTION in str(error), repr(error)
    if path == "flash_fallback_probe":
        assert result is False and error is None
    if path == "lazy_load_kernel":
        assert result is None and error is None


def test_switch_sets_and_restores_the_environment_and_patches(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("kernels")
    import kernels
    from transformers.integrations import hub_kernels

    monkeypatch.setenv("USE_HUB_KERNELS", "YES")
    real_kernels, real_hub = kernels.get_kernel, hub_kernels.get_kernel_hub
    assert hub_kernels._kernels_enabled()
    restore = disable_hub_kernels()
    nested = disable_hub_kernels()
    assert hub_kernels_switch_active()
    assert os.environ["USE_HUB_KERNELS"] == "NO" and not hub_kernels._kernels_enabled()
    assert kernels.get_kernel is not real_kernels and hub_kernels.get_kernel_hub is not real_hub
    nested()
    assert not hub_kernels._kernels_enabled()  # the outer user still holds the switch
    restore()
    restore()  # idempotent
    assert not hub_kernels_switch_active()
    assert os.environ["USE_HUB_KERNELS"] == "YES" and hub_kernels._kernels_enabled()
    assert kernels.get_kernel is real_kernels and hub_kernels.get_kernel_hub is real_hub


IMPORT_CHILD = """
import json, sys
from pytest_tinymodels.netguard import disable_hub_kernels, network_guard

restore = disable_hub_kernels()  # before transformers / kernels are imported, as in pytest_configure
with network_guard() as guard:
    import transformers.models.gpt_neo.modeling_gpt_neo  # probes for a flash-attention hub kernel on import
    import kernels
    from transformers.integrations import hub_kernels
    patched = [kernels.get_kernel.__name__, hub_kernels.get_kernel_hub.__name__]
restore()
print(json.dumps({
    "blocked": [b.describe() for b in guard.blocked],
    "patched": patched,
    "restored": [kernels.get_kernel.__module__, hub_kernels.get_kernel_hub.__module__],
}))
"""


def test_switch_set_before_transformers_is_imported_covers_import_time_probes() -> None:
    """GPT-Neo and Bark call is_flash_attn_available(kernels_fallback_ok=True) at import, on any device."""
    pytest.importorskip("kernels")
    env = {k: v for k, v in os.environ.items() if k != "USE_HUB_KERNELS"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", IMPORT_CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["blocked"] == []
    assert result["patched"] == ["_blocked_get_kernel", "_blocked_get_kernel"]
    assert all(module.startswith("kernels.") for module in result["restored"]), result["restored"]


def test_from_pretrained_and_train_do_not_kernelize_with_the_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fetch: FetchRecorder
) -> None:
    """On CUDA, ``kernelize`` is what fetches kernels-community/rotary, liger-kernels, mamba-ssm, fla."""
    import transformers
    from transformers import modeling_utils

    kernelized: list[str] = []

    def record_kernelize(model: Any, *args: Any, **kwargs: Any) -> None:
        kernelized.append(type(model).__name__)
        model._use_kernels = True

    monkeypatch.setattr(modeling_utils, "kernelize", record_kernelize)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=32,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")

    model = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "tiny")  # control: default use_kernels
    assert kernelized == ["LlamaForCausalLM"] and model.use_kernels

    kernelized.clear()
    with hub_kernels_disabled():
        model = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "tiny")
        model.train()
        model.eval()
    assert kernelized == [] and not model.use_kernels
    assert fetch.calls == []


# --------------------------------------------------------------------------------------------------
# integration through pytest (what the plugin will do)
# --------------------------------------------------------------------------------------------------

FIXTURE_CONFTEST = """
import pytest
from pytest_tinymodels.netguard import hub_kernels_disabled, network_guard

@pytest.fixture(scope="session", autouse=True)
def tiny_hermetic_session():
    with hub_kernels_disabled(), network_guard() as guard:
        yield guard
"""

INNER_TESTS = """
import os
import socket

def test_far_connection():
    socket.create_connection(("10.255.255.1", 9), timeout=0.5)

def test_loopback_connection():
    server = socket.create_server(("127.0.0.1", 0))
    with socket.create_connection(server.getsockname(), timeout=5):
        pass
    server.close()

def test_hub_kernels_are_off():
    assert os.environ["USE_HUB_KERNELS"] == "NO"
"""


def test_session_autouse_fixture_guards_every_test(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    before = _socket_state()
    pytester.makeconftest(FIXTURE_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest("-p", "no:tinymodels", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*NetworkAccessError: network access blocked by pytest-tinymodels: connection to 10.255.255.1:9 "
         f"from test_inner.py:5 in test_far_connection.*{ALLOW_NETWORK_OPTION}*"]
    )  # fmt: skip
    assert _socket_state() == before
    assert "USE_HUB_KERNELS" not in os.environ


HOOK_CONFTEST = """
from pytest_tinymodels.netguard import disable_hub_kernels, NetworkGuard

def pytest_configure(config):
    config._tiny_restore_kernels = disable_hub_kernels()
    config._tiny_guard = NetworkGuard().install()

def pytest_terminal_summary(terminalreporter, config):
    blocked = config._tiny_guard.blocked
    if blocked:
        terminalreporter.section("pytest-tinymodels network guard")
        terminalreporter.line(f"blocked {len(blocked)} network access attempt(s):")
        for attempt in blocked:
            terminalreporter.line("  " + attempt.describe())

def pytest_unconfigure(config):
    config._tiny_guard.uninstall()
    config._tiny_restore_kernels()
"""

COLLECTION_TIME_ACCESS = """
import socket

try:  # a library probing the network at import time and swallowing the failure
    socket.getaddrinfo("huggingface.co", 443)
except Exception:
    pass

def test_nothing():
    pass
"""


def test_hook_integration_also_guards_collection_and_reports_swallowed_attempts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    before = _socket_state()
    pytester.makeconftest(HOOK_CONFTEST)
    pytester.makepyfile(test_probe=COLLECTION_TIME_ACCESS)
    result = pytester.runpytest("-p", "no:tinymodels", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-tinymodels network guard*",
            "blocked 1 network access attempt(s):",
            "  name resolution of huggingface.co:443 from test_probe.py:4 in <module>",
        ]
    )
    assert _socket_state() == before
    assert "USE_HUB_KERNELS" not in os.environ


def test_module_imports_no_heavy_library() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pytest_tinymodels.netguard
        heavy = [m for m in ("torch", "transformers", "kernels", "huggingface_hub") if m in sys.modules]
        print(heavy)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
