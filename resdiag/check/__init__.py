"""``resdiag check``: gates for CI, read from ``[tool.resdiag]`` or a ``resdiag.toml``.

The layers, in the order a run goes through them (docs/ci.md documents every key):

- ``tomlfile``, ``schema``, ``config``: read the TOML and validate it strictly into frozen configs;
- ``runner``: build each model and run its probes (the only module here that imports torch);
- ``gates``, ``baseline``, ``tolerance``: pure functions from measured numbers to pass/fail gates;
- ``result``: the ``resdiag.check`` JSON result every output format reads;
- ``human``, ``junit``, ``github``: the output formats; ``run_check`` ties it together.

Importing this package imports neither torch nor rich.
"""
