"""benchmarks/gpu: its own rootdir manifest (fixtures.toml beside this file).

cuDNN's scaled-dot-product attention is turned off for the sweep (``TINY_SWEEP_CUDNN_SDP=1`` keeps it):
with torch 2.11.0+cu130 / cuDNN 9.19 on an H200, once DiffLlama's attention has run in a process, the
bfloat16 backward of the next models' first attention layer returns non-finite gradients through the
cuDNN backend (19-model sequences: 5-7 failures with it, 0 without it, 0 with flash or memory-efficient
attention off instead; benchmarks/RESULTS.md).  The sweep checks the fixtures, not that cuDNN bug.
"""

import os

import torch

if torch.cuda.is_available() and os.environ.get("TINY_SWEEP_CUDNN_SDP") != "1":
    torch.backends.cuda.enable_cudnn_sdp(False)
