"""Time the tiny hub's modes: session setup, first and later ``from_pretrained`` of hub ids.

    python benchmarks/hub_modes.py            # serve, offline and an external `serve` process
    python benchmarks/hub_modes.py serve      # one mode

Uses the tiny cache of ``PYTEST_TINYMODELS_CACHE`` (entries are built once, before timing) and
points ``HF_ENDPOINT`` at a closed port, so nothing can come from a network. Prints one JSON line
per mode: setup seconds, and per id the first model+tokenizer load and the mean of 5 later ones.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IDS = ["org/tiny-llama", "org/tiny-gpt2", "org/tiny-bert"]
MANIFEST = """
[fixtures.tiny_llama]
model_type = "llama"
hub_id = "org/tiny-llama"
[fixtures.tiny_gpt2]
model_type = "gpt2"
hub_id = "org/tiny-gpt2"
[fixtures.tiny_bert]
model_type = "bert"
hub_id = "org/tiny-bert"
"""


def _closed_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run_one(mode: str, manifest: Path) -> dict:
    """In this process: set the hub up (serve/offline) or use HF_ENDPOINT as given (external)."""
    from transformers import AutoModel, AutoTokenizer

    setup = 0.0
    if mode in ("serve", "offline"):
        from pytest_tinymodels.cache import Cache
        from pytest_tinymodels.hub.registry import load_hub_registry
        from pytest_tinymodels.hub.repos import TinyHub
        from pytest_tinymodels.manifest import load_manifest
        from pytest_tinymodels.session import TinySession, resolve_cache_dir

        m = load_manifest(manifest)
        hub = TinyHub(TinySession(m, Cache(resolve_cache_dir().value)), load_hub_registry(m), mode)
        start = time.perf_counter()
        hub.start()
        setup = time.perf_counter() - start
    result: dict = {"mode": mode, "setup_s": round(setup, 3)}
    for rid in IDS:
        start = time.perf_counter()
        AutoModel.from_pretrained(rid)
        AutoTokenizer.from_pretrained(rid)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(5):
            AutoModel.from_pretrained(rid)
            AutoTokenizer.from_pretrained(rid)
        result[rid] = {"first_s": round(first, 3), "later_ms": round((time.perf_counter() - start) / 5 * 1000, 1)}
    return result


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(run_one(sys.argv[2], Path(sys.argv[3]))), flush=True)
        return
    modes = sys.argv[1:] or ["serve", "offline", "external"]
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "fixtures.toml"
        manifest.write_text(MANIFEST)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env["HF_ENDPOINT"] = _closed_endpoint()
        env["HF_HUB_CACHE"] = str(Path(tmp) / "hf-cache")
        subprocess.run([sys.executable, "-m", "pytest_tinymodels", "build", "--manifest", str(manifest)],
                       env=env, check=True, capture_output=True)
        for mode in modes:
            child_env = dict(env)
            server = None
            if mode == "external":
                start = time.perf_counter()
                server = subprocess.Popen([sys.executable, "-m", "pytest_tinymodels", "serve", "--port", "0",
                                           "--manifest", str(manifest)], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
                line = server.stdout.readline()
                child_env["HF_ENDPOINT"] = line.split()[-1]
                print(f"# serve process ready in {time.perf_counter() - start:.2f}s", flush=True)
            try:
                out = subprocess.run([sys.executable, __file__, "--child", mode, str(manifest)], env=child_env,
                                     capture_output=True, text=True, check=True)
                print(out.stdout.strip().splitlines()[-1], flush=True)
            finally:
                if server is not None:
                    server.terminate()
                    server.wait(timeout=30)


if __name__ == "__main__":
    main()
