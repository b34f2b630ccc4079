"""`python -m paper_checks`: every figure writes a PNG, a JSON of the plotted
numbers and its section of REPORT.md. The full --quick run is `slow`; the
default run smoke-tests one figure and the error paths."""
import json
import struct

import numpy as np
import pytest

import paper_checks
from paper_checks import c2_kernel_convergence
from paper_checks.__main__ import main
from ntk_equiv.cli import main as cli_main


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _check_outputs(out, keys):
    report = (out / "REPORT.md").read_text(encoding="utf-8")
    assert report.startswith("# Paper checks") and "python -m paper_checks" in report
    for key in keys:
        w, h = _png_size(out / f"{key}.png")
        assert w > 300 and h > 200
        data = json.loads((out / f"{key}.json").read_text(encoding="utf-8"))
        assert data["claim"] in report and "![" in report and f"({key}.png)" in report
    assert "FAILED" not in report


def test_quick_one_figure_smoke(tmp_path):
    assert main(["--quick", "--out", str(tmp_path), "--only", "c2"]) == 0
    _check_outputs(tmp_path, ["c2_kernel_convergence"])
    data = json.loads((tmp_path / "c2_kernel_convergence.json").read_text(encoding="utf-8"))
    for label, arch in data["archs"].items():
        errs = np.array(arch["errors"])
        # the JSON holds exactly what is plotted: means of the per-seed errors
        np.testing.assert_allclose(arch["mean"], errs.mean(1), rtol=1e-12)
        # C2: the error falls with width; over a factor 32 in width a n^-1/2 rate is a
        # factor ~5.7, far beyond the seed-to-seed scatter of the means (sem ~ 20%)
        assert arch["slope"] < 0, label
        assert arch["mean"][-1] < arch["mean"][0], label


def test_failing_figure_is_reported_and_exit_1(tmp_path, monkeypatch, capsys):
    def boom(out, quick=False, seed=0):
        raise RuntimeError("injected figure failure")

    monkeypatch.setattr(c2_kernel_convergence, "run", boom)
    assert main(["--quick", "--out", str(tmp_path), "--only", "c2"]) == 1
    report = (tmp_path / "REPORT.md").read_text(encoding="utf-8")
    assert "FAILED" in report and "injected figure failure" in report


def test_cli_delegates_to_paper_checks(tmp_path, monkeypatch):
    monkeypatch.setattr(c2_kernel_convergence, "run", lambda out, quick=False, seed=0: 1 / 0)
    assert cli_main(["paper-checks", "--quick", "--out", str(tmp_path), "--only", "c2"]) == 1
    assert "ZeroDivisionError" in (tmp_path / "REPORT.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("argv", [["--only", "zz"], ["--seed", "x"], ["--nope"]])
def test_bad_usage_exits_2(argv, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_quick_run_writes_every_figure(tmp_path):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    _check_outputs(tmp_path, paper_checks.FIGURES)
    c9 = json.loads((tmp_path / "c9_ordering.json").read_text(encoding="utf-8"))
    # C9 is an exact Loewner order: float64 eigenvalues of O(1) differences are >= -1e-10 x scale
    assert c9["min_eig_posterior_minus_ensemble"] >= -1e-10 * c9["prior_scale"]
    assert c9["min_eig_prior_minus_posterior"] >= -1e-10 * c9["prior_scale"]
