"""benchmarks/gpu.sh builds its table and gpu.json from each step's own result and status, whatever failed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="gpu.sh is a bash script")
def test_the_table_and_json_come_from_each_steps_result_and_status(tmp_path: Path) -> None:
    # An earlier run's working folder: results of real shapes (the committed CPU throughput, the 224 px
    # cells of the committed recipe matrix, a wall-time result), one step timed out, two never ran.
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "results").mkdir(parents=True)
    (work / "logs").mkdir()
    out.mkdir()
    results = work / "results"
    shutil.copy(ROOT / "benchmarks" / "throughput-cpu.json", results / "throughput-resnet50.json")
    recipe = json.loads((ROOT / "benchmarks" / "recipe.json").read_text(encoding="utf-8"))
    cells = [cell for cell in recipe["summary"] if cell["size"] == 224]
    (results / "recipe-224.json").write_text(json.dumps({"summary": cells}))
    (results / "wall-time.json").write_text(json.dumps({
        "start_to_exit_s": 40.0, "fit_s": 32.0, "start_to_exit/fit": 1.25, "before_fit_s": 6.0, "after_fit_s": 2.0,
        "train_images_per_s": 1700.0}))
    (work / "status.tsv").write_text("throughput-resnet50\tok\t95\nthroughput-resnet50-compile\ttimed out\t210\n"
                                     "wall-time\tok\t50\nrecipe-224\tok\t150\n")
    # The gpu.json already there (an earlier call's): its row of a step not run this time stays.
    throughput = json.loads((ROOT / "benchmarks" / "throughput-cpu.json").read_text(encoding="utf-8"))
    (tmp_path / "gpu.json").write_text(json.dumps({"steps": [
        {"name": "throughput-lite0", "status": "ok", "seconds": 80, "result": throughput, "date": "2026-12-01"},
        {"name": "wall-time", "status": "ok", "seconds": 60, "result": None, "date": "2026-12-01"}]}))
    env = {**os.environ, "GPU_SH_WORK": str(work), "GPU_SH_STEPS": "none", "GPU_SH_DEVICE": "cpu",
           "GPU_SH_PYTHON": sys.executable, "GPU_SH_JSON": str(tmp_path / "gpu.json"), "OUT": str(out)}

    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], env=env, capture_output=True, text=True,
                          timeout=300)

    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert "loader 81,947" in rows["throughput-resnet50"]
    assert "template/synthetic **0.99**, template/plain_loop 0.99" in rows["throughput-resnet50"]
    assert "| timed out | 210 |" in rows["throughput-resnet50-compile"]
    assert "| ok (2026-12-01) | 80 |" in rows["throughput-lite0"]  # from the earlier call
    assert "| not run |" in rows["wall-time-compile"]
    assert "start to exit 40 s, fit 32 s: **1.25x**" in rows["wall-time"]
    assert "photo-crops 224 px, 5 seeds: 0.815 mean / 0.750 worst" in rows["recipe-224"]
    saved = json.loads((tmp_path / "gpu.json").read_text(encoding="utf-8"))
    assert [(step["name"], step["status"]) for step in saved["steps"]] == [
        ("throughput-resnet50", "ok"), ("throughput-lite0", "ok"), ("wall-time", "ok"), ("recipe-224", "ok"),
        ("throughput-resnet50-compile", "timed out"), ("wall-time-compile", "not run")]
    assert saved["steps"][2]["seconds"] == 50  # run this time: this run's row, not the earlier one
    assert saved["steps"][0]["result"]["template"] == 59.1
    # What comes back from the device machine: the JSON, the table and the logs, in $OUT.
    assert json.loads((out / "gpu.json").read_text(encoding="utf-8")) == saved
    assert (out / "gpu.md").read_text(encoding="utf-8").strip() in done.stdout
    assert (out / "gpu-logs.tar.gz").is_file()
