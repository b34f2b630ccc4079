"""Speed of the infinite-width kernels against neural-tangents (issue 19).

Cases (float64, NNGP + NTK, symmetric kernel of the inputs):

* ``mlp``: depth-5 ReLU MLP (sigma_w 1.5, sigma_b 0.1), 2000 inputs of
  dimension 32. Target: ours <= 0.5 x neural-tangents' jitted ``kernel_fn``.
* ``cnn``: 128 images 8x8x3 through three Conv 3x3 SAME + ReLU layers,
  GlobalAvgPool and Dense (the full 64 x 64 spatial covariance per pair of
  images, since global pooling mixes positions). Target: <= 0.25 x. Its peak
  memory (tracemalloc, a separate run) is printed too.
* ``dps``: 64 inputs, depth 3, ``dps=50`` (ours only; target < 3 s).

neural-tangents (not a dependency of this project) runs in this interpreter
when importable, else in ``--nt-python`` (a separate venv, e.g.
``/work/ntvenv/bin/python``; JAX 0.4.30 with neural-tangents 0.6.5: newer JAX
removed ``jax.core.Jaxpr``, which neural-tangents imports) as a worker
process that stays alive, so its jitted functions are compiled once. Each
repeat runs ours then neural-tangents, interleaved, and the minimum of the
repeats is reported, so a change of load on a shared machine hits both;
the load average is printed beside, and the CPU seconds of each process
(all its threads), which the load disturbs less than the wall time. The largest difference between the two
(relative to the diagonal) is printed so they are known to compute the
same kernel (~1e-8: neural-tangents' ``arccos`` near correlation 1).

**Against an earlier commit** (so a regression shows): ``--compare REF``
checks ``REF`` (e.g. ``main``) out in a temporary ``git worktree`` and runs
the same cases on its ``ntk_equiv`` in a worker process, interleaved with
ours and neural-tangents; ``--baseline FILE`` prints the figures stored in a
JSON file (written by ``--json FILE``, e.g. benchmarks/baseline_kernels.json)
instead. Each figure is printed beside the reference's, with
``REGRESSION`` where ours is more than 15% slower, in CPU seconds when
both runs have them (wall times on this shared machine vary by more).

Run: ``python benchmarks/bench_kernels.py [--repeat R] [--cases mlp,cnn,dps]
[--nt-python PATH] [--compare REF | --baseline FILE] [--json FILE]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

def _package_root() -> str:
    # --package-root DIR (a worktree of another commit, see --compare): import its ntk_equiv
    if "--package-root" in sys.argv:
        return sys.argv[sys.argv.index("--package-root") + 1]
    return str(Path(__file__).resolve().parents[1])


sys.path.insert(0, _package_root())
import ntk_equiv as ne  # noqa: E402

MLP = dict(n=2000, d=32, depth=5, sigma_w=1.5, sigma_b=0.1)
CNN = dict(n=128, shape=(8, 8, 3), convs=3, sigma_w=1.5, sigma_b=0.1)


def mlp_inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((MLP["n"], MLP["d"]))


def cnn_inputs() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((CNN["n"],) + CNN["shape"])


def ours(case: str):
    """A function computing the case's kernel with ntk_equiv, returning ``(nngp, ntk)``."""
    if case == "mlp":
        arch, x = ne.mlp(MLP["depth"], "relu", sigma_w=MLP["sigma_w"], sigma_b=MLP["sigma_b"]), mlp_inputs()
    elif case == "cnn":
        sw, sb = CNN["sigma_w"], CNN["sigma_b"]
        arch = ne.serial(*[layer for _ in range(CNN["convs"])
                           for layer in (ne.Conv((3, 3), padding="SAME", sigma_w=sw, sigma_b=sb), ne.Relu())],
                         ne.GlobalAvgPool(), ne.Dense(sw, sb))
        x = cnn_inputs()
    else:
        raise ValueError(case)

    def run():
        k = arch.kernel(x)
        return k.nngp, k.ntk
    return run


#: The neural-tangents side: the same architectures in ``stax``, jitted, as a
#: line-oriented worker (``case`` -> seconds; ``save case path`` -> the kernel).
NT_WORKER = r'''
import sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
from neural_tangents import stax

MLP, CNN = {mlp}, {cnn}

def build(case):
    if case == "mlp":
        layers = []
        for _ in range(MLP["depth"]):
            layers += [stax.Dense(1, W_std=MLP["sigma_w"], b_std=MLP["sigma_b"]), stax.Relu()]
        layers += [stax.Dense(1, W_std=MLP["sigma_w"], b_std=MLP["sigma_b"])]
        x = np.random.default_rng(0).standard_normal((MLP["n"], MLP["d"]))
    else:
        layers = []
        for _ in range(CNN["convs"]):
            layers += [stax.Conv(1, (3, 3), padding="SAME", W_std=CNN["sigma_w"], b_std=CNN["sigma_b"]), stax.Relu()]
        layers += [stax.GlobalAvgPool(), stax.Dense(1, W_std=CNN["sigma_w"], b_std=CNN["sigma_b"])]
        x = np.random.default_rng(1).standard_normal((CNN["n"],) + tuple(CNN["shape"]))
    kfn = jax.jit(stax.serial(*layers)[2], static_argnames="get")
    def run():
        out = kfn(x, None, get=("nngp", "ntk"))
        jax.block_until_ready(out)
        return out
    run()  # compile
    return run

fns = {{}}
print("ready", jax.__version__, flush=True)
for line in sys.stdin:
    words = line.split()
    case = words[-1] if words[0] != "save" else words[1]
    if case not in fns:
        fns[case] = build(case)
    if words[0] == "save":
        nngp, ntk = fns[case]()
        np.save(words[2], np.stack([np.asarray(nngp), np.asarray(ntk)]))
        print("saved", flush=True)
    else:
        start, cpu = time.perf_counter(), time.process_time()
        fns[case]()
        print(time.perf_counter() - start, time.process_time() - cpu, flush=True)
'''


class NeuralTangents:
    """neural-tangents' jitted kernels, in a worker process of ``python``."""

    def __init__(self, python: str):
        src = NT_WORKER.format(mlp=repr(MLP), cnn=repr(CNN))
        self.proc = subprocess.Popen([python, "-c", src], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True,
                                     env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        ready = self.proc.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError(f"neural-tangents worker in {python} did not start")
        self.version = f"jax {ready[1]}"

    def time(self, case: str) -> tuple:
        self.proc.stdin.write(f"time {case}\n")
        self.proc.stdin.flush()
        return tuple(float(v) for v in self.proc.stdout.readline().split())

    def kernel(self, case: str) -> tuple:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "k.npy")
            self.proc.stdin.write(f"save {case} {path}\n")
            self.proc.stdin.flush()
            self.proc.stdout.readline()
            k = np.load(path)
        return k[0], k[1]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Reference:
    """The same cases on the ``ntk_equiv`` of another commit: ``git worktree
    add`` of ``ref`` in a temporary directory, and this script in worker mode
    on it (``--package-root``), timing one run per request."""

    def __init__(self, ref: str):
        repo = Path(__file__).resolve().parents[1]
        self.tmp = tempfile.mkdtemp(prefix="bench-ref-")
        self.repo, self.path = repo, os.path.join(self.tmp, "tree")
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", self.path, ref], check=True,
                       capture_output=True, text=True)
        self.sha = subprocess.run(["git", "-C", self.path, "rev-parse", "--short", "HEAD"], check=True,
                                  capture_output=True, text=True).stdout.strip()
        self.ref = ref
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", "--package-root", self.path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def time(self, case: str) -> tuple:
        self.proc.stdin.write(case + "\n")
        self.proc.stdin.flush()
        return tuple(float(v) for v in self.proc.stdout.readline().split())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force", self.path], check=False,
                       capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def worker() -> None:
    """``--worker``: read case names, print the seconds of one run of each
    (the first run of a case warms it up and is not timed)."""
    fns = {}
    for line in sys.stdin:
        case = line.strip()
        if case not in fns:
            fns[case] = dps_case if case == "dps" else ours(case)
            fns[case]()
        print(*timed(fns[case]), flush=True)


def dps_case():
    x64 = np.random.default_rng(0).standard_normal((64, MLP["d"]))
    return ne.mlp(3, "relu", sigma_w=MLP["sigma_w"], sigma_b=MLP["sigma_b"]).kernel(x64, dps=50)


def beside(r: dict, ref: dict, label: str) -> str:
    """Our figure with the reference's and their ratio, flagged when slower by
    > 15% (in CPU seconds when both have them: the load disturbs them less)."""
    if "ours" not in ref:
        return ""
    wall = r["ours"] / ref["ours"]
    if "ours_cpu" in ref:
        cpu = r["ours_cpu"] / ref["ours_cpu"]
        flag = "  REGRESSION" if cpu > 1.15 else ""
        return (f" | {label}: {ref['ours']:.3f} s, {ref['ours_cpu']:.3f} CPU-s; ours / it = {wall:.2f} wall, "
                f"{cpu:.2f} CPU{flag}")
    return f" | {label}: {ref['ours']:.3f} s, ours / it = {wall:.2f}{'  REGRESSION' if wall > 1.15 else ''}"


def timed(fn) -> tuple:
    """``(wall, cpu)`` seconds of ``fn()``: CPU time of the whole process (every
    thread), the figure a loaded machine disturbs least."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def peak_memory(fn) -> float:
    """Peak bytes traced by tracemalloc (numpy's allocations included) during ``fn()``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def scaled_difference(a: tuple, b: tuple) -> float:
    scale = np.sqrt(np.outer(np.diag(a[1]), np.diag(a[1])))
    return float(max(np.max(np.abs(x - y) / scale) for x, y in zip(a, b)))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def bench_case(case: str, repeat: int, nt: NeuralTangents | None, ref: Reference | None = None) -> dict:
    """``{"ours": s, "nt": s, "ratio": r, "ref": s, ...}``: min over ``repeat``
    interleaved runs (ours, the reference commit's, neural-tangents')."""
    fn = ours(case) if case != "dps" else dps_case
    fn()  # warm: imports, caches
    mine, theirs, before = [], [], []
    loads = [os.getloadavg()[0]]
    for _ in range(repeat):
        mine.append(timed(fn))
        if ref is not None:
            before.append(ref.time(case))
        if nt is not None and case != "dps":
            theirs.append(nt.time(case))
        loads.append(os.getloadavg()[0])
    out = {"ours": min(w for w, _ in mine), "ours_cpu": min(c for _, c in mine), "load": max(loads)}
    if ref is not None:
        out.update(ref=min(w for w, _ in before), ref_cpu=min(c for _, c in before))
    if case == "dps":
        return out
    if nt is not None:
        out.update(nt=min(w for w, _ in theirs), nt_cpu=min(c for _, c in theirs))
        out.update(ratio=out["ours"] / out["nt"], ratio_cpu=out["ours_cpu"] / out["nt_cpu"],
                   diff=scaled_difference(fn(), nt.kernel(case)))
    if case == "cnn":
        out["peak_mib"] = peak_memory(fn) / 2**20
    return out


def describe(case: str, r: dict, threads: int, ref: dict | None, label: str) -> str:
    ref = ref or {}
    if case == "dps":
        return (f"dps=50 NNGP+NTK, depth 3 ReLU, 64 x {MLP['d']}: {r['ours']:.3f} s, {r['ours_cpu']:.3f} CPU-s "
                f"(target < 3 s)" + beside(r, ref, label))
    what = {"mlp": f"MLP depth {MLP['depth']} ReLU, {MLP['n']} x {MLP['d']}",
            "cnn": f"CNN 3 x Conv 3x3 SAME + ReLU, GlobalAvgPool, Dense, {CNN['n']} x 8x8x3"}[case]
    target = {"mlp": 0.5, "cnn": 0.25}[case]
    line = (f"{what}: ours {r['ours']:.3f} s, {r['ours_cpu']:.3f} CPU-s ({threads} threads)"
            + beside(r, ref, label))
    if "nt" in r:
        line += (f"\n  neural-tangents {r['nt']:.3f} s, {r['nt_cpu']:.3f} CPU-s; ratio {r['ratio']:.2f} wall, "
                 f"{r['ratio_cpu']:.2f} CPU (target <= {target})"
                 + (f" [{label}: {ref['ratio']:.2f}]" if "ratio" in ref else "")
                 + f"; max |ours - nt| / scale = {r['diff']:.1e}")
    if "peak_mib" in r:
        line += f"\n  peak memory {r['peak_mib']:.0f} MiB" + (
            f" [{label}: {ref['peak_mib']:.0f} MiB]" if "peak_mib" in ref else "")
    return line + f"\n  max 1-min load during: {r['load']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default="mlp,cnn,dps")
    parser.add_argument("--nt-python", default=None,
                        help="python of a venv with neural-tangents (default: this one, if it can import it)")
    parser.add_argument("--compare", default=None, metavar="REF",
                        help="also time the ntk_equiv of git commit REF (a temporary worktree), interleaved")
    parser.add_argument("--baseline", default=None, metavar="FILE", help="print the figures of FILE (JSON) beside")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--package-root", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    cases = args.cases.split(",")
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}, {load()}")
    nt = ref = None
    python = args.nt_python or sys.executable
    try:
        nt = NeuralTangents(python)
        print(f"neural-tangents from {python} ({nt.version})")
    except (RuntimeError, OSError) as exc:
        print(f"neural-tangents not available ({exc}): ours only")
    stored, label = {}, None
    if args.compare:
        ref = Reference(args.compare)
        label = f"{args.compare} ({ref.sha})"
        print(f"reference: {label}, run interleaved in a worktree")
    elif args.baseline:
        data = json.loads(Path(args.baseline).read_text())
        stored, label = data["results"], f"baseline {data.get('commit', '?')}"
        print(f"reference: {args.baseline} ({data.get('commit', '?')}, {data.get('load', '?')})")
    results = {}
    try:
        for case in cases:
            repeat = args.repeat if case == "mlp" else max(1, args.repeat // 2)
            results[case] = bench_case(case, repeat, nt, ref)
            prev = ({"ours": results[case]["ref"], "ours_cpu": results[case]["ref_cpu"]} if ref is not None
                    else stored.get(case))
            print(describe(case, results[case], ne.kernels.KERNEL_THREADS, prev, label))
    finally:
        if nt is not None:
            nt.close()
        if ref is not None:
            ref.close()
    print(load())
    if args.json:
        commit = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short",
                                 "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
        Path(args.json).write_text(json.dumps({"commit": commit, "load": load(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
