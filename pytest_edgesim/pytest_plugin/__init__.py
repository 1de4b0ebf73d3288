"""The pytest plugin: a thin layer over the core. :mod:`.hooks` is the ``pytest11`` entry
point (options, markers, hooks); :mod:`.settings` resolves every setting in one place;
:mod:`.fixtures` and :mod:`.docker_fixtures` build core objects and tear them down;
:mod:`.trials` runs statistical tests; :mod:`.session_report` keeps the session's record."""
