"""The tiny hub: Hub repo ids served from tiny cache entries, with no network.

* :mod:`.client` — huggingface_hub access for ``source``/``download`` fixtures (the only module that
  talks to a real Hub);
* :mod:`.registry` — which ids exist and what each stands for (manifest ``hub_id``, ``[hub]``, rules);
* :mod:`.snapshots` — a repo directory as the Hub describes it (files, ETags, commit sha);
* :mod:`.server` — a loopback HTTP server speaking the Hub's read endpoints;
* :mod:`.repos` — entries built on demand and published as repos; the session's :class:`~.repos.TinyHub`;
* :mod:`.plugin` — the pytest face (``--tiny-hub``); :mod:`.serve` — ``python -m pytest_tinymodels serve``.
"""
