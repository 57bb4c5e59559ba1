"""The plugin's hermetic defaults: no hub kernels unless asked, and the network guard (issue 12 part 5)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = """
import os, socket
import pytest

def test_kernels_env():
    assert os.environ.get("USE_HUB_KERNELS") == {expected!r}

def test_connect():
    try:
        socket.create_connection(("10.255.255.1", 9), timeout=0.5).close()
        error = None
    except Exception as exc:
        error = type(exc).__name__
    assert (error == "NetworkAccessError") == {guarded!r}, error
"""


def _run(pytester: pytest.Pytester, expected: str | None, guarded: bool, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_net=TEST_FILE.format(expected=expected, guarded=guarded))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "tiny_network_guard=false", *args)


def test_hub_kernels_are_off_by_default(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "NO", True, "--tiny-network-guard")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*tinymodels network guard*", "*refused*", "*test_net.py::test_connect: connection to 10.255.255.1:9*test_net.py*"])


def test_hub_kernels_opt_in_and_no_guard(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    result = _run(pytester, None, False, "--tiny-hub-kernels")
    result.assert_outcomes(passed=2)
    assert "network guard" not in result.stdout.str()


def test_allow_network_overrides_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntiny_network_guard = true\n")
    pytester.makepyfile(test_net=TEST_FILE.format(expected="NO", guarded=False))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tiny-allow-network")
    result.assert_outcomes(passed=2)


MARKED = """
import os, socket
import pytest

def _refused():
    try:
        socket.create_connection(("10.255.255.1", 9), timeout=0.2).close()
    except Exception as exc:
        return type(exc).__name__ == "NetworkAccessError"
    return False

@pytest.mark.tiny_allow_network
@pytest.mark.tiny_hub_kernels
def test_lifted():
    assert not _refused()
    assert os.environ.get("USE_HUB_KERNELS") is None

def test_restored_after():
    assert _refused()
    assert os.environ.get("USE_HUB_KERNELS") == "NO"
"""


def test_markers_lift_the_guard_and_the_kernel_switch_for_one_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tiny-network-guard", "--strict-markers",
                                           "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert "test_lifted" not in result.stdout.str().split("network guard")[-1]
