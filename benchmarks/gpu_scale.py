"""benchmarks/scale.py on a GPU, with the device, its peak memory and repeated horizon timings added.

Usage (repository root): ``OUT=DIR python3 benchmarks/gpu_scale.py {agents,horizon,episodes} [options]``,
the options of scale.py; results go to DIR/gpu_scale.json, laid out as benchmarks/results/scale.json.
Each measurement runs in its own subprocess (this file, ``_child``): agents and episodes call
scale.py's ``one_agents`` / ``one_episodes`` / ``one_horizon`` (with ``repeats=5``: 5 more timed
value+grad calls and their median). Every row gets platform, device_kind,
jax_version, gpu_peak_mib (``memory_stats()['peak_bytes_in_use']`` of the GPU) and subprocess_seconds.
Used for docs/gpu.md.
"""

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# the tree whose benchmarks/scale.py runs: $GPU_SRC (on the GPU a `git archive HEAD` snapshot), else this repo
SRC = Path(os.environ.get("GPU_SRC", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(SRC / "benchmarks"))
import scale  # noqa: E402

OUT = Path(os.environ.get("OUT", "."))
scale.RESULTS = OUT / "gpu_scale.json"


def _device_info() -> dict:
    import jax

    d = jax.devices()[0]
    info = {"platform": d.platform, "device_kind": d.device_kind, "jax_version": jax.__version__}
    try:
        st = d.memory_stats() or {}
        info["gpu_peak_mib"] = st.get("peak_bytes_in_use", 0) / 2**20
    except Exception as e:  # noqa: BLE001
        info["gpu_peak_mib"] = None
        info["memory_stats_error"] = repr(e)
    return info


def _child(kind: str, kwargs: dict) -> dict:
    horizon = functools.partial(scale.one_horizon, repeats=5)
    fn = {"agents": scale.one_agents, "horizon": horizon, "episodes": scale.one_episodes}[kind]
    r = fn(**kwargs)
    r.update(_device_info())
    return r


def _run_child(kind: str, kwargs: dict) -> dict:
    cmd = [sys.executable, __file__, "_child", kind, json.dumps(kwargs)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    sys.stderr.write(out.stderr[-3000:])
    if out.returncode != 0:
        err = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
        return {**kwargs, "error": err, "subprocess_seconds": wall}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["subprocess_seconds"] = wall
    return r


scale._run_child = _run_child

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        print(json.dumps(_child(sys.argv[2], json.loads(sys.argv[3]))))
    else:
        scale.main()
