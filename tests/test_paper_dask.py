"""The paper grid as Dask tasks: ``run_paper(workers=, client=)``, ``paper --workers/--scheduler``.

Quick settings (tiny data, few steps: the numbers mean nothing, only that the task runs give the
serial run's numbers). One test starts a real local cluster of two processes; the others use an
in-process client, which shares this process's compiled programs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_diml.cli import main
from bayes_diml.optional import MissingExtraError
from bayes_diml.studies import experiments as X

distributed = pytest.importorskip("dask.distributed")

GRID = {"experiments": ["e2"], "seeds": [0, 1], "methods": ["tabular_mle", "equilibrium"]}
KEY = ["experiment", "setting", "method", "seed"]
#: Submission order of GRID's rows (experiment, setting, seed, then method), as in a serial run.
ROWS = [("e2", "4x5", "tabular_mle", 0), ("e2", "4x5", "equilibrium", 0)]
ROWS += [("e2", "4x5", "tabular_mle", 1), ("e2", "4x5", "equilibrium", 1)]
#: Deterministic columns (fit_seconds is a wall-clock time).
SCORES = ["diff_mse", "cfkl_params", "interval_coverage_90"]


def _keys(csv: Path) -> list[tuple]:
    df = X.load_results(csv)
    return [(e, s, m, int(sd)) for e, s, m, sd in df[KEY].itertuples(index=False)]


def _by_key(csv: Path) -> pd.DataFrame:
    return X.load_results(csv).set_index(KEY).sort_index()


def _assert_same_numbers(csv: Path, reference: Path) -> None:
    """Same rows, same scores to 1e-6, same n_params and same saved params as ``reference``."""
    got, want = _by_key(csv), _by_key(reference)
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got[SCORES].to_numpy(float), want[SCORES].to_numpy(float), rtol=1e-6)
    np.testing.assert_array_equal(got["n_params"].to_numpy(), want["n_params"].to_numpy())
    for e, s, m, sd in got.index:
        name = f"{e}_{s}_{m}_seed{sd}.npz"
        a = X.load_params(csv.parent / f"{csv.stem}_params" / name)
        b = X.load_params(reference.parent / f"{reference.stem}_params" / name)
        assert sorted(a) == sorted(b), name
        for k in b:
            if b[k].dtype.kind in "fc":
                np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-9, err_msg=f"{name}: {k}")
            else:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    """The serial run of GRID (the reference)."""
    out = tmp_path_factory.mktemp("serial") / "serial.csv"
    X.run_paper(GRID["experiments"], GRID["seeds"], GRID["methods"], out, quick=True, progress=False)
    assert _keys(out) == ROWS
    return out


@pytest.fixture(scope="module")
def client():
    """An in-process client with one single-threaded worker: tasks run one at a time, in order."""
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        yield c


def _run(out: Path, **kwargs):
    return X.run_paper(GRID["experiments"], GRID["seeds"], GRID["methods"], out, quick=True, **kwargs)


def _count_submits(client, monkeypatch) -> list[tuple]:
    """Record the row of every task ``client.submit`` is given."""
    submitted: list[tuple] = []
    submit = client.submit

    def counting(fn, method_fn, key, *args, **kwargs):
        submitted.append(key)
        return submit(fn, method_fn, key, *args, **kwargs)

    monkeypatch.setattr(client, "submit", counting)
    return submitted


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_two_local_workers_give_the_serial_rows(serial, tmp_path, capsys):
    out = tmp_path / "tasks.csv"
    df = _run(out, workers=2, progress=True)
    _assert_same_numbers(out, serial)
    assert sorted(_keys(out)) == sorted(ROWS) and len(df) == len(ROWS)
    assert tuple(pd.read_csv(out).columns) == X.CSV_COLUMNS  # one header, the same format
    lines = capsys.readouterr().err.strip().splitlines()
    rows = [ln for ln in lines if re.match(r"e2 4x5 \w+ +seed \d: diff_mse", ln)]
    assert len(rows) == len(ROWS)  # one progress line per finished row
    # negative control: the comparison fails when one score moves by 1e-5 (relative)
    moved = pd.read_csv(out, dtype={"setting": str})
    moved.loc[0, "cfkl_params"] *= 1 + 1e-5
    moved.to_csv(out, index=False)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        _assert_same_numbers(out, serial)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_client_runs_only_the_missing_rows(serial, client, tmp_path, monkeypatch):
    out = tmp_path / "resume.csv"
    head = "".join(serial.read_text().splitlines(keepends=True)[:3])  # header + the first two rows
    out.write_text(head)
    submitted = _count_submits(client, monkeypatch)
    df = _run(out, client=client, progress=False)
    assert submitted == ROWS[2:]
    assert out.read_text().startswith(head)  # old rows untouched, new ones appended
    assert sorted(_keys(out)) == sorted(ROWS) and len(df) == len(ROWS)
    new = _by_key(out).loc[[tuple(k) for k in ROWS[2:]]]
    np.testing.assert_allclose(
        new[SCORES].to_numpy(float), _by_key(serial).loc[new.index, SCORES].to_numpy(float), rtol=1e-6
    )
    before = out.read_text()
    _run(out, client=client, progress=False)
    assert submitted == ROWS[2:] and out.read_text() == before  # nothing left: no task at all


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_a_failing_row_is_named_and_the_finished_rows_stay(serial, client, tmp_path, monkeypatch):
    out = tmp_path / "fail.csv"
    original = X.METHOD_FUNCTIONS["equilibrium"]

    def broken(env, settings, seed):
        if seed == 1:
            raise FloatingPointError("boom")
        return original(env, settings, seed)

    monkeypatch.setitem(X.METHOD_FUNCTIONS, "equilibrium", broken)
    with pytest.raises(
        RuntimeError, match=r"experiment=e2 setting=4x5 method=equilibrium seed=1 failed"
    ) as err:
        _run(out, client=client, progress=False)
    assert isinstance(err.value.__cause__, FloatingPointError) and "boom" in str(err.value)
    assert _keys(out) == ROWS[:3]  # the last row failed; the three before it were written
    assert not (out.parent / "fail_params" / "e2_4x5_equilibrium_seed1.npz").exists()
    # the rerun resumes: one task, and then the grid matches the serial run
    monkeypatch.setitem(X.METHOD_FUNCTIONS, "equilibrium", original)
    submitted = _count_submits(client, monkeypatch)
    _run(out, client=client, progress=False)
    assert submitted == ROWS[3:]
    _assert_same_numbers(out, serial)


def test_bad_workers_and_client_together(client, tmp_path):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        _run(tmp_path / "r.csv", workers=0)
    with pytest.raises(ValueError, match="not both"):
        _run(tmp_path / "r.csv", workers=2, client=client)
    assert not (tmp_path / "r.csv").exists()


def test_missing_sweep_extra_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import dask.distributed fails
    with pytest.raises(MissingExtraError, match=re.escape('pip install "bayes-diml[sweep]"')):
        _run(tmp_path / "r.csv", workers=2)
    result = CliRunner().invoke(main, ["paper", "e2", "--quick", "--out", str(tmp_path / "r.csv"),
                                       "--scheduler", "tcp://127.0.0.1:1"])  # fmt: skip
    assert result.exit_code == 1 and 'pip install "bayes-diml[sweep]"' in result.output
    assert not (tmp_path / "r.csv").exists()


@pytest.fixture
def run_paper_calls(serial, monkeypatch) -> list[dict]:
    """Replace run_paper by a recorder that returns the serial run's rows."""
    calls: list[dict] = []

    def fake(*args, **kwargs):
        calls.append({"args": args, **kwargs})
        client = kwargs.get("client")
        calls[-1]["address"] = None if client is None else client.scheduler.address
        return X.load_results(serial)

    monkeypatch.setattr(X, "run_paper", fake)
    return calls


def _paper(*flags: str, out: Path):
    args = ["paper", "e2", "--seeds", "0,1", "--quick", "--no-progress", "--out", str(out), *flags]
    return CliRunner().invoke(main, args)


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cli_workers_and_scheduler_reach_run_paper(run_paper_calls, client, tmp_path):
    assert _paper("--workers", "3", out=tmp_path / "r.csv").exit_code == 0
    assert run_paper_calls[-1]["workers"] == 3 and run_paper_calls[-1]["client"] is None
    address = client.scheduler.address
    result = _paper("--scheduler", address, out=tmp_path / "r.csv")
    assert result.exit_code == 0, result.output
    assert run_paper_calls[-1]["workers"] is None and run_paper_calls[-1]["address"] == address
    assert _paper(out=tmp_path / "r.csv").exit_code == 0  # neither flag: serial
    assert run_paper_calls[-1]["workers"] is None and run_paper_calls[-1]["client"] is None
    assert len(run_paper_calls) == 3


@pytest.mark.slow  # fast-suite budget (README: under 5 min on 2 cores); CI's slow run checks it
def test_cli_workers_and_scheduler_are_mutually_exclusive(run_paper_calls, tmp_path):
    both = _paper("--workers", "2", "--scheduler", "tcp://127.0.0.1:8786", out=tmp_path / "r.csv")
    assert both.exit_code == 2 and "mutually exclusive" in both.output
    zero = _paper("--workers", "0", out=tmp_path / "r.csv")
    assert zero.exit_code == 2 and "--workers" in zero.output
    assert run_paper_calls == []
