"""benchmarks/gpu: its own rootdir manifest (fixtures.toml beside this file)."""
