"""Run the CLI in-process in tests: ``invoke`` (exit code and no traceback) and ``fails`` (a clean error)."""

from __future__ import annotations

from click.testing import CliRunner, Result

from bayes_diml.cli import main


def invoke(*args, ok: bool = True) -> Result:
    """Run ``bayes-diml ARGS``; check that it exits 0 (``ok``) or not, and that no traceback leaked."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert (result.exit_code == 0) == ok, result.output
    return result


def fails(*args, match: str) -> str:
    """The command must fail with a message containing ``match`` (case-insensitive); return it, unwrapped."""
    result = invoke(*args, ok=False)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    text = " ".join(result.output.split())  # click wraps long messages
    assert match.lower() in text.lower(), result.output
    return text
