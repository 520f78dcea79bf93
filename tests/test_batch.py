"""``fusedem batch`` on a real dask.distributed LocalCluster: failures, summary, resume, stacks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusedem
import fusedem.io
from fusedem.cli import _task

SCRIPT = Path(sys.executable).parent / "fusedem"


def fusedem_cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "fusedem.cli"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def synthetic(shape=(48, 64), seed=0, frames: int | None = None) -> dict[str, np.ndarray]:
    """HAADF and noisy Sc/Dy/O maps of a small synthetic lattice."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lead = () if frames is None else (frames,)
    cols = {s: (np.cos(yy / p) * np.cos(xx / p) + 1) / 2 for s, p in (("Sc", 2.0), ("Dy", 3.0), ("O", 1.3))}
    out = {s: rng.poisson(4 * np.broadcast_to(c, lead + shape)).astype(np.float32) for s, c in cols.items()}
    out["HAADF"] = (21 * cols["Sc"] + 66 * cols["Dy"] + 8 * cols["O"] + rng.random(lead + shape)).astype(np.float32)
    return out


@pytest.fixture()
def inputs(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        np.savez(d / f"good{i}.npz", **synthetic(seed=i))
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 this zip is cut short")
    full = d / "good0.npz"
    (d / "truncated.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    noelem = dict(synthetic(seed=9))
    for s in ("Sc", "Dy", "O"):
        noelem.pop(s)
    noelem["BF"] = noelem["HAADF"]
    np.savez(d / "nomaps.npz", **noelem)
    assert full.exists()
    return d


@pytest.fixture(scope="module")
def cluster():
    """A 2-worker LocalCluster of processes, for ``--scheduler``."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_batch_mixed_inputs_local_cluster(inputs, tmp_path):
    out = tmp_path / "out"
    proc = fusedem_cli("batch", inputs / "*.npz", inputs / "truncated.h5", inputs / "absent.h5",
                       "-o", out, "--workers", 2, "--n-iter", 3, "--report", tmp_path / "r.json")
    assert proc.returncode == 1, proc.stderr
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"done": 3, "failed": 4}
    assert {r["input"] for r in report["results"] if r["status"] == "done"} == {
        str(inputs / f"good{i}.npz") for i in range(3)}
    assert "Traceback" not in proc.stderr
    assert "3 done, 0 skipped (already complete), 4 failed" in proc.stderr
    failed = proc.stderr.split("failed:")[1]
    for name in ("corrupt.npz", "truncated.h5", "absent.h5: no such file", "nomaps.npz"):
        assert name in failed
    assert sorted(p.name for p in out.iterdir()) == [
        "fusedem_params.toml", "good0_fused.h5", "good1_fused.h5", "good2_fused.h5"]
    res = fusedem.io.load_result(out / "good1_fused.h5")
    assert set(res.maps) == {"Sc", "Dy", "O"} and res.params["n_iter"] == 3
    # the same numbers as a direct call
    raw = synthetic(seed=1)
    ref = fusedem.fuse(raw.pop("HAADF"), raw, n_iter=3)
    np.testing.assert_allclose(res.maps["O"], ref.maps["O"], atol=1e-6)


def test_batch_resume_on_existing_scheduler(inputs, tmp_path, cluster):
    out = tmp_path / "out"
    good = [inputs / f"good{i}.npz" for i in range(3)]
    first = fusedem_cli("batch", *good, "-o", out, "--scheduler", cluster.scheduler_address,
                        "--n-iter", 3, "-q")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    kept = (out / "good0_fused.h5").stat().st_mtime_ns
    # a partial run: one output missing, one corrupt (cut short), a temp file left by a kill
    (out / "good1_fused.h5").unlink()
    data = (out / "good2_fused.h5").read_bytes()
    (out / "good2_fused.h5").write_bytes(data[: len(data) // 2])
    (out / ".good1_fused.h5.abc.tmp").write_bytes(b"junk")
    second = fusedem_cli("batch", *good, "-o", out, "--scheduler", cluster.scheduler_address,
                         "--n-iter", 3)
    assert second.returncode == 0, second.stderr
    assert "2 done, 1 skipped (already complete), 0 failed" in second.stdout
    assert (out / "good0_fused.h5").stat().st_mtime_ns == kept
    for i in (1, 2):
        assert fusedem.io.load_result(out / f"good{i}_fused.h5").params["n_iter"] == 3
    # a third run has nothing to do
    third = fusedem_cli("batch", *good, "-o", out, "--scheduler", cluster.scheduler_address, "--n-iter", 3)
    assert third.returncode == 0 and "0 done, 3 skipped" in third.stdout
    # different parameters into the same folder are refused before any work
    other = fusedem_cli("batch", *good, "-o", out, "--scheduler", cluster.scheduler_address, "--n-iter", 4)
    assert other.returncode == 2 and "other settings" in other.stderr


def test_batch_usage_errors(tmp_path, inputs):
    proc = fusedem_cli("batch", tmp_path / "none*.h5", "-o", tmp_path / "o", "--workers", 0)
    assert proc.returncode == 2 and "--workers" in proc.stderr
    bad = fusedem_cli("batch", inputs / "good0.npz", "-o", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:9",
                      "--connect-timeout", 2, "-q", timeout=120)
    assert bad.returncode == 2 and "cannot connect" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_stack_frames_become_jobs(tmp_path):
    """A 3-D stack (frame axis first) expands to one job per frame, each fused separately."""
    import h5py

    stack = synthetic(shape=(32, 40), frames=3, seed=4)
    src = tmp_path / "series.h5"
    with h5py.File(src, "w") as f:
        for k, v in stack.items():
            f[k] = v
    settings = _task.Settings(params=fusedem.FusionParams(n_iter=2).to_dict(), outdir=str(tmp_path),
                              crop=(0, 16, 8, -1))
    ex = _task.expand(str(src), settings)
    assert ex.status == "expanded" and [j.frame for j in ex.jobs] == [0, 1, 2]
    assert Path(ex.jobs[2].output).name == "series_f0002_fused.h5"
    outs = [_task.run_job(j, settings) for j in ex.jobs]
    assert [o.status for o in outs] == ["done"] * 3, [o.message for o in outs]
    res = fusedem.io.load_result(ex.jobs[1].output)
    assert res.maps["Dy"].shape == (16, 32)
    ref = fusedem.fuse(stack["HAADF"][1, :16, 8:], {s: stack[s][1, :16, 8:] for s in ("Sc", "Dy", "O")},
                       n_iter=2)
    np.testing.assert_allclose(res.maps["Dy"], ref.maps["Dy"], atol=1e-6)
    assert _task.run_job(ex.jobs[0], settings).status == "skipped"


def test_interrupted_batch_leaves_only_complete_outputs_and_resumes(tmp_path):
    """Ctrl-C (SIGINT to the process group) mid-batch: exit 130, no partial files, resume finishes."""
    import os
    import signal
    import time

    d = tmp_path / "in"
    d.mkdir()
    for i in range(12):
        np.savez(d / f"s{i:02d}.npz", **synthetic(shape=(160, 160), seed=i))
    out = tmp_path / "out"
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "fusedem.cli"]
    args = ["batch", str(d / "*.npz"), "-o", str(out), "--workers", "2", "--n-iter", "150", "-q"]
    proc = subprocess.Popen(cmd + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*_fused.h5")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    done = sorted(out.glob("*_fused.h5"))
    if proc.returncode == 130:
        assert "interrupted" in err and 0 < len(done) < 12
    else:  # the batch was quicker than the signal
        assert proc.returncode == 0, err
    for p in done:  # every output that exists is complete
        assert fusedem.io.load_result(p).params["n_iter"] == 150
    again = fusedem_cli(*args[:-1])
    assert again.returncode == 0, again.stderr
    assert f"{12 - len(done)} done, {len(done)} skipped" in again.stdout
    assert len(list(out.glob("*_fused.h5"))) == 12


def test_batch_over_a_stack_file_through_the_console_script(tmp_path):
    """A real 3-D .npz stack read by the plugin's reader: one output per frame via Dask."""
    stack = synthetic(shape=(32, 40), frames=3, seed=5)
    src = tmp_path / "frames.npz"
    np.savez(src, **stack)
    out = tmp_path / "out"
    r = fusedem_cli("batch", src, "-o", out, "--workers", "2", "--n-iter", "3", "-q")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.glob("*_fused.h5"))
    assert names == [f"frames_f{i:04d}_fused.h5" for i in range(3)]
    res = fusedem.io.load_result(out / names[2])
    ref = fusedem.fuse(stack["HAADF"][2], {s: stack[s][2] for s in ("Sc", "Dy", "O")}, n_iter=3)
    np.testing.assert_allclose(res.maps["O"], ref.maps["O"], atol=1e-6)
