"""Three builds in three empty caches, compared file by file (issue 12: reproducible builds).

    python benchmarks/three_builds.py OUT_DIR [--code DIR] NAMES...

Builds NAMES (fixtures of the built-in manifest plus ``tiny_clip``, a CLIPModel with CLIP's suffixed BPE
tokenizer) with ``python -m pytest_tinymodels build`` in three fresh processes, each with its own empty
cache, another hash seed and other tokenizers / rayon thread settings, the second in reverse order.
``--code DIR`` imports pytest_tinymodels from DIR (a frozen copy of the tree) instead of the installed one.
Prints, per entry, the number of files, whether the cache keys agree, the files whose bytes differ and
those that still differ once recipe.json's timings and COMPLETE.json's stat fields are left out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ENVS = ({"PYTHONHASHSEED": "1", "RAYON_NUM_THREADS": "1"},
        {"PYTHONHASHSEED": "2", "RAYON_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"},
        {"PYTHONHASHSEED": "3"})
CLIP = '[fixtures.tiny_clip]\nmodel_type = "clip"\narchitecture = "CLIPModel"\ntokenizer = { vocab_size = 512 }\n'


def build(out: Path, i: int, names: list[str], code: Path | None) -> dict[str, Path]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONHASHSEED", "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM", "PYTEST_TINYMODELS_CACHE")}
    env.update(ENVS[i], HF_HUB_OFFLINE="1")
    if code is not None:
        env["PYTHONPATH"] = str(code)
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest_tinymodels", "build", "--manifest", str(out / "fixtures.toml"),
                           "--cache-dir", str(out / f"cache{i}"), *(names[::-1] if i == 1 else names)],
                          capture_output=True, text=True, env=env, cwd=code or out)
    if proc.returncode:
        sys.exit(proc.stdout[-2000:] + proc.stderr[-3000:])
    entries = {}
    for line in proc.stdout.splitlines():
        paths = [Path(p) for p in line.split() if Path(p).parent.name == "entries" and Path(p).is_dir()]
        if paths:
            entries[line.split()[0]] = paths[0]
    print(f"build {i}: {len(entries)} entries in {time.time() - start:.0f} s", file=sys.stderr)
    return entries


def digests(entry: Path, normalize: bool) -> dict[str, str]:
    out = {}
    for path in sorted(p for p in entry.rglob("*") if p.is_file()):
        rel, data = path.relative_to(entry).as_posix(), path.read_bytes()
        if normalize and rel == "recipe.json":
            recipe = json.loads(data)
            for key in ("timings", "build_seconds"):
                recipe.pop(key, None)
            data = json.dumps(recipe, sort_keys=True).encode()
        elif normalize and rel == "COMPLETE.json":
            marker = json.loads(data)
            marker.pop("created", None)
            for name, info in marker.get("files", {}).items():
                for key in ("ino", "mtime_ns") + (("size", "sha256") if name == "recipe.json" else ()):
                    info.pop(key, None)
            data = json.dumps(marker, sort_keys=True).encode()
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--code", type=Path)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fixtures.toml").write_text(CLIP)
    builds = [build(args.out, i, args.names, args.code) for i in range(len(ENVS))]
    report = {}
    for label in builds[0]:
        raw = [digests(b[label], False) for b in builds]
        norm = [digests(b[label], True) for b in builds]
        files = sorted(set().union(*raw))
        report[label] = {"files": len(files), "same_key": len({b[label].name for b in builds}) == 1,
                         "differ": [f for f in files if len({r.get(f) for r in raw}) > 1],
                         "differ_without_timings_and_stat": [f for f in files if len({n.get(f) for n in norm}) > 1]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
