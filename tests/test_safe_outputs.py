"""Outputs: full disks, other people's files, changed inputs, two runs at once (issue 14, items 2-5, 8)."""
from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusedem
import fusedem.io
from fusedem.cli import _outputs, _task
from fusedem.io import _atomic


def synthetic(shape=(40, 48), seed=0) -> dict[str, np.ndarray]:
    """HAADF and noisy Sc/Dy/O maps of a small synthetic lattice."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cols = {s: (np.cos(yy / p) * np.cos(xx / p) + 1) / 2 for s, p in (("Sc", 2.0), ("Dy", 3.0), ("O", 1.3))}
    out = {s: rng.poisson(4 * c).astype(np.float32) for s, c in cols.items()}
    out["HAADF"] = (21 * cols["Sc"] + 66 * cols["Dy"] + 8 * cols["O"] + rng.random(shape)).astype(np.float32)
    return out


def run_cli(*args, preexec=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fusedem.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec)


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        np.savez(d / f"d{i}.npz", **synthetic(shape=(40, 48), seed=i))
    return d


@pytest.fixture
def big_inputs(tmp_path):
    """Three inputs whose results are ~0.5 MB each."""
    d = tmp_path / "big"
    d.mkdir()
    for i in range(3):
        np.savez(d / f"d{i}.npz", **synthetic(shape=(160, 160), seed=i))
    return d


def settings(out: Path, **kw) -> _task.Settings:
    return _task.Settings(params=fusedem.FusionParams(n_iter=2).to_dict(), outdir=str(out), **kw)


def job(src: Path, out: Path) -> _task.Job:
    return _task.Job(str(src), str(out / f"{src.stem}_fused.h5"))


# ------------------------------------------------------------ item 2: a failed write
def _small_files():  # in the child: writes beyond 100 kB fail with EFBIG instead of killing it
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


def test_failed_writes_are_clear_per_input_errors_and_the_run_finishes(big_inputs, tmp_path):
    out = tmp_path / "out"
    inputs = big_inputs
    proc = run_cli("fuse", *sorted(inputs.glob("*.npz")), "-o", out, "--n-iter", 2, "-q", preexec=_small_files)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "h5py" not in proc.stderr
    for i in range(3):
        assert f"cannot write {out / f'd{i}_fused.h5'}: File too large" in proc.stderr
    assert "0 done, 0 skipped (already complete), 3 failed" in proc.stderr
    assert list(out.iterdir()) == []  # no temporary files, and no parameters without a result


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell the files apart")
def test_full_disk_stops_the_run_cleanly(inputs, tmp_path, monkeypatch, capsys):
    """ENOSPC while writing results: a clear error, temporary file removed, the rest not started."""
    real = os.fsync

    def full(fd):
        if ".h5." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(_atomic.os, "fsync", full)
    from fusedem.cli import main

    out = tmp_path / "out"
    assert main(["fuse", *map(str, sorted(inputs.glob("*.npz"))), "-o", str(out), "--n-iter", "2", "-q"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out / 'd0_fused.h5'}: no space left on device" in err
    assert f"{inputs / 'd2.npz'}: not started (" in err and "3 failed" in err
    assert list(out.iterdir()) == []  # the parameters file is written with a first result only


def test_full_disk_message(inputs, tmp_path, monkeypatch, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_atomic.os, "fsync", full)
    out = tmp_path / "out"
    outs = [_task.run_job(job(inputs / f"d{i}.npz", out), settings(out)) for i in range(2)]
    assert outs[0].status == "failed" and outs[0].fatal
    assert outs[0].message == f"{inputs / 'd0.npz'}: cannot write {out / 'd0_fused.h5'}: no space left on device"
    assert not list(out.glob(".*"))


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="mounting a small tmpfs needs root")
def test_real_full_disk(big_inputs, tmp_path):
    inputs = big_inputs
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = run_cli("fuse", *sorted(inputs.glob("*.npz")), "-o", mnt / "out", "--n-iter", 2, "-q")
        assert proc.returncode == 1 and proc.returncode >= 0, proc.stderr
        assert "no space left on device" in proc.stderr and "Traceback" not in proc.stderr
        assert "failed in" in proc.stderr  # the summary
        assert not list((mnt / "out").glob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(mnt)])


# ------------------------------------------------------------ item 3: never replace other people's files
@pytest.mark.parametrize("name,content", [("d0_fused.h5", None), ("d0_fused.h5", b"my notes\n"),
                                          ("d0_fused.tif", None)])
def test_files_fusedem_did_not_write_are_not_replaced(inputs, tmp_path, name, content):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / name
    if content is not None:
        mine.write_bytes(content)
    elif name.endswith(".h5"):
        import h5py

        with h5py.File(mine, "w") as f:
            f["Dy"] = np.ones((40, 48))
    else:
        import tifffile

        tifffile.imwrite(mine, np.ones((40, 48), np.float32))
    before = mine.read_bytes()
    fmt = ["--format", "tiff"] if name.endswith(".tif") else []
    proc = run_cli("fuse", inputs / "d0.npz", "-o", out, "--n-iter", 2, "-q", *fmt)
    assert proc.returncode == 1
    assert f"{mine}: exists and was not written by fusedem" in proc.stderr
    assert mine.read_bytes() == before
    again = run_cli("fuse", inputs / "d0.npz", "-o", out, "--n-iter", 2, "-q", "--overwrite", *fmt)
    assert again.returncode == 0, again.stderr
    assert _outputs.written_by_fusedem(mine)


def test_a_fusedem_result_cut_short_is_recognised_and_redone(inputs, tmp_path):
    out = tmp_path / "out"
    s = settings(out)
    assert _task.run_job(job(inputs / "d0.npz", out), s).status == "done"
    res = out / "d0_fused.h5"
    res.write_bytes(res.read_bytes()[:5000])
    assert _outputs.written_by_fusedem(res)
    again = _task.run_job(job(inputs / "d0.npz", out), s)
    assert again.status == "done" and "redone" in again.message


# ------------------------------------------------------------ item 4: resume compares the input
def test_resume_does_not_reuse_a_result_of_other_data(inputs, tmp_path):
    out = tmp_path / "out"
    s = settings(out)
    src = inputs / "d0.npz"
    assert _task.run_job(job(src, out), s).status == "done"
    assert _task.run_job(job(src, out), s).status == "skipped"
    copy = tmp_path / "copy" / "d0.npz"  # same content elsewhere (other mtime): still complete
    copy.parent.mkdir()
    copy.write_bytes(src.read_bytes())
    assert _task.run_job(job(copy, out), s).status == "skipped"
    np.savez(src, **synthetic(shape=(40, 48), seed=9))  # same name, other data
    other = _task.run_job(job(src, out), s)
    assert other.status == "failed" and "made from other input data" in other.message
    redo = _task.run_job(job(src, out), settings(out, overwrite=True))
    assert redo.status == "done"
    assert _task.run_job(job(src, out), s).status == "skipped"


# ------------------------------------------------------------ item 5: two runs into one folder
def test_an_output_claimed_by_another_process_is_left_to_it(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "d0_fused.h5"
    code = ("import sys, time\nfrom fusedem.cli._outputs import claim\n"
            "with claim(sys.argv[1]) as mine:\n    print(mine, flush=True)\n    sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        busy = _task.run_job(job(inputs / "d0.npz", out), settings(out))
        assert busy.status == "busy" and "another fusedem run" in busy.message
        assert not target.exists()
    finally:
        holder.communicate("", timeout=60)
    done = _task.run_job(job(inputs / "d0.npz", out), settings(out))
    assert done.status == "done"
    assert not (out / ".d0_fused.h5.lock").exists()


def test_claim_is_exclusive_within_a_folder(tmp_path):
    with _outputs.claim(tmp_path / "a.h5") as first:
        assert first
        code = "import sys\nfrom fusedem.cli._outputs import claim\nwith claim(sys.argv[1]) as m: print(m)"
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.h5")], capture_output=True,
                               text=True, timeout=60)
        assert other.stdout.strip() == "False", other.stderr
        b = subprocess.run([sys.executable, "-c", code, str(tmp_path / "b.h5")], capture_output=True,
                           text=True, timeout=60)
        assert b.stdout.strip() == "True"


def test_batch_threads_follow_free_cores(monkeypatch):
    from fusedem.cli import _batch

    monkeypatch.setattr(_batch, "machine_cores", lambda: 8)
    monkeypatch.setattr(_batch.os, "getloadavg", lambda: (5.2, 0.0, 0.0))
    assert _batch.free_cores() == 3
    monkeypatch.setattr(_batch.os, "getloadavg", lambda: (11.0, 0.0, 0.0))
    assert _batch.free_cores() == 1


# ------------------------------------------------------------ item 8: leftovers and read-only folders
def test_a_rerun_removes_temporary_files_left_by_a_kill(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    orphan = out / ".d0_fused.h5.x1y2z3.tmp"
    orphan.write_bytes(b"partial")
    orphan.chmod(0o600)
    unrelated = out / ".notes.txt.tmp"
    unrelated.write_bytes(b"keep")
    assert _task.run_job(job(inputs / "d0.npz", out), settings(out)).status == "done"
    assert not orphan.exists() and unrelated.exists()


def test_read_only_output_folder_is_named(inputs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def ro(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(out / ".d0_fused.h5.lock"))

    monkeypatch.setattr(_outputs.os, "open", ro)
    o = _task.run_job(job(inputs / "d0.npz", out), settings(out))
    assert o.status == "failed" and o.fatal
    assert o.message.endswith(f"cannot write to {out}: read-only file system")
    assert ".lock" not in o.message and ".tmp" not in o.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_read_only_output_folder_cli(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        proc = run_cli("fuse", inputs / "d0.npz", "-o", out, "--n-iter", 2, "-q")
    finally:
        out.chmod(0o755)
    assert proc.returncode == 2 and f"cannot write to {out}: permission denied" in proc.stderr


def test_save_result_failures_name_the_path(tmp_path, monkeypatch):
    r = fusedem.fuse(*_inputs(), n_iter=2)

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / ".r.h5.abc.tmp"))

    monkeypatch.setattr(_atomic.tempfile, "mkstemp", denied)
    with pytest.raises(OSError, match=rf"^cannot write to {tmp_path}: permission denied$"):
        fusedem.io.save_result(tmp_path / "r.h5", r)


def _inputs():
    d = synthetic(shape=(32, 32), seed=1)
    return d["HAADF"], {k: v for k, v in d.items() if k != "HAADF"}


def test_napari_writer_never_replaces_a_users_file(tmp_path):
    from fusedem.napari._writer import write_fused

    mine = tmp_path / "dysco_fused.h5"
    mine.write_bytes(b"my own results\n")
    meta = {"name": "Dy (fused)", "metadata": {"fusedem": {"role": "fused", "element": "Dy", "Z": 66}}}
    assert write_fused(str(mine), [(np.ones((8, 8), np.float32), meta, "image")]) == []
    assert mine.read_bytes() == b"my own results\n"
    assert write_fused(str(tmp_path / "new.h5"), [(np.ones((8, 8), np.float32), meta, "image")])
    assert _outputs.written_by_fusedem(tmp_path / "new.h5")


def test_local_cluster_binds_no_fixed_port(monkeypatch):
    """Without --dashboard the scheduler's HTTP endpoint takes a free local port, not 8787."""
    import dask.distributed

    from fusedem.cli import _batch

    seen = {}

    class Stop(Exception):
        pass

    def fake_cluster(**kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(dask.distributed, "LocalCluster", fake_cluster)
    monkeypatch.setattr(_batch, "load_kernels", lambda: 0.0)
    for dashboard, expect in ((None, {"dashboard_address": "127.0.0.1:0"}), (":8787", None)):
        with pytest.raises(Stop), _batch.open_client(None, 1, dashboard, quiet=True):
            pass
        assert seen["scheduler_kwargs"] == expect and seen["dashboard_address"] == dashboard


def test_a_job_rerun_after_its_worker_was_lost_counts_as_done(inputs, tmp_path):
    """Dask reruns the tasks of a lost worker: an output this very run made is 'done', not 'skipped'."""
    out = tmp_path / "out"
    s = settings(out, run_id="run-1")
    first = _task.run_job(job(inputs / "d0.npz", out), s)
    again = _task.run_job(job(inputs / "d0.npz", out), s)
    assert (first.status, again.status) == ("done", "done") and "worker was lost" in again.message
    assert _task.run_job(job(inputs / "d0.npz", out), settings(out, run_id="run-2")).status == "skipped"
