"""Reports people look at: charts (matplotlib, the ``[html]`` extra) and the self-contained
HTML page, from plain data (the JSON report's, ``RunResult.to_dict()``). Sits on the core;
the pytest plugin (``--edgesim-html``) and the CLI (``edgesim run --plot``) use it."""
