"""``python -m rlexp`` is the ``rlexp`` command."""

from rlexp.cli import app

app(prog_name="rlexp")
