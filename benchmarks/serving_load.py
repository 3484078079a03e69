"""Does serving hold up under a burst? A bounded load test of the Space app and the demo, on loopback.

Bakes this template with its defaults into a temporary folder, writes scikit-learn's digits as an
image folder (no downloads), trains a small run with the generated project (a ResNet-18 from scratch,
1 epoch: the answers only need to be real, not good) and exports it with ``--format space``. Then, for
each server (the Space's ``app.py`` in a process without the project, and the project's ``demo``):

    1. start it on 127.0.0.1, on a free port
    2. 50 requests at once (50 threads), then 200 one after another, each a real validation photo
    3. bad uploads (a 400-megapixel bomb, a 144-megapixel panorama, junk bytes, an animated GIF,
       a cut-off JPEG, an EPS file) and hostile requests (a 144-megapixel data: URL through Gradio's
       API /gradio_api/call/predict, 1,000 files in one /gradio_api/upload): each must get its 4xx
    4. one big real photo (a 90-megapixel JPEG): 200, and how much the server's peak memory grew
    5. stop it

It prints p50/p95 latency per phase and the server's peak memory after the 50-request burst, and
exits 1 if any request went unanswered or got a 5xx other than 503 (busy: more requests than
serving.MAX_IN_FLIGHT at once get 503 with Retry-After).
Every loop has a fixed count and every request a timeout, so it always stops by itself.

    python benchmarks/serving_load.py [--servers space demo]          # -> benchmarks/serving_load.json
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # sample_data.py: the images, built offline

from sample_data import write_digits  # noqa: E402

PARALLEL, SEQUENTIAL = 50, 200
TIMEOUT_S = 120  # per request


def bake(out: Path) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(out), overwrite_if_exists=True))


def load_module(path: Path):
    """Import one of the generated project's test helpers (loopback.py, bad_uploads.py) by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project_command(project: Path, *args: str) -> list[str]:
    (package,) = [p.name for p in (project / "src").iterdir() if (p / "__init__.py").is_file()]
    return [sys.executable, "-m", package, *args]


def run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[2:4])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def peak_memory_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (Linux: VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def percentiles(seconds: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50_ms": round(1000 * statistics.median(seconds), 1), "p95_ms": round(1000 * cuts[94], 1)}


def big_jpeg(width: int, height: int) -> bytes:
    """A real greyscale JPEG photo of ``width`` x ``height`` (made here, a few MB)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((width, height)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def load_test(name: str, command: list[str], cwd: Path, env: dict[str, str], photos: list[tuple[str, bytes]],
              helpers: dict, huge: bytes) -> dict:
    loopback, bad = helpers["loopback"], helpers["bad_uploads"]
    port = loopback.free_port()
    env = dict(env, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    if name == "demo":
        command = [*command, "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result: dict = {"server": name}
    try:
        loopback.wait_for_page(url + "/", process, seconds=180)

        def ask(upload: tuple[str, bytes]) -> tuple[int, float]:
            started = time.perf_counter()
            try:
                status, _ = loopback.post_file(url + "/classify", *upload, timeout=TIMEOUT_S)
            except Exception:  # no answer at all (reset, timeout): counted, never retried
                status = 0
            return status, time.perf_counter() - started

        # First, alone: how much the peak memory grows for one 90-megapixel photo (after one warm-up photo).
        ask(photos[0])
        before = peak_memory_mb(process.pid)
        status, seconds = ask(("photo_90mp.jpg", huge))
        after = peak_memory_mb(process.pid)
        result["huge_photo"] = {"megapixels": 90, "mb": round(len(huge) / 1e6, 1), "status": status,
                                "ms": round(1000 * seconds, 1),
                                "peak_memory_growth_mb": round(after - before, 1) if before and after else None,
                                "peak_memory_mb": round(after, 1) if after else None}
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            burst = list(pool.map(ask, [photos[i % len(photos)] for i in range(PARALLEL)]))
        result["peak_memory_mb_after_burst"] = peak_memory_mb(process.pid)
        sequence = [ask(photos[i % len(photos)]) for i in range(SEQUENTIAL)]
        for phase, answers in (("parallel_50", burst), ("sequential_200", sequence)):
            statuses = [status for status, _ in answers]
            result[phase] = {"requests": len(answers), "ok": statuses.count(200), "busy_503": statuses.count(503),
                             "errors": len(statuses) - statuses.count(200) - statuses.count(503),
                             **percentiles([seconds for _, seconds in answers])}
        refusals = {"bomb_400mp.png": (bad.flat_png(20000, 20000), 413),
                    "panorama_144mp.jpg": (bad.jpeg_claiming(16000, 9000), 413),
                    "junk.jpg": (os.urandom(50_000), 415), "party.gif": (bad.animated_gif(), 415),
                    "half.jpg": (bad.truncated_jpeg(), 422), "poster.eps": (bad.eps_file(), 415)}
        result["refusals"] = {}
        for file, (data, expected) in refusals.items():
            status, seconds = ask((file, data))
            result["refusals"][file] = {"status": status, "expected": expected, "ms": round(1000 * seconds, 1)}
        bomb = bad.gradio_payload(bad.data_url(bad.flat_png(12000, 12000)))  # made before the clock starts
        started = time.perf_counter()
        status = loopback.gradio_call(url, "predict", [bomb], timeout=TIMEOUT_S)[0]
        result["refusals"]["data_url_144mp (Gradio API)"] = {"status": status, "expected": 413,
                                                             "ms": round(1000 * (time.perf_counter() - started), 1)}
        body, kind = loopback.multipart([(f"{i}.jpg", b"x") for i in range(1000)])
        started = time.perf_counter()
        status = loopback.post(url + "/gradio_api/upload", body, kind, timeout=TIMEOUT_S)[0]
        result["refusals"]["upload_1000_files"] = {"status": status, "expected": 413,
                                                   "ms": round(1000 * (time.perf_counter() - started), 1)}
        result["peak_memory_mb_after_all"] = peak_memory_mb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", nargs="+", choices=["space", "demo"], default=["space", "demo"])
    parser.add_argument("--json", metavar="FILE", default=str(ROOT / "benchmarks" / "serving_load.json"),
                        help="write the figures here (default: benchmarks/serving_load.json)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="serving-load-") as tmp:
        tmp = Path(tmp)
        project = bake(tmp / "bake")
        data = write_digits(tmp / "digits", size=64)
        env = dict(os.environ, PYTHONPATH=str(project / "src"), HF_HUB_OFFLINE="1")
        print("Training a small run and exporting it as a Space ...", flush=True)
        run(project_command(project, "train", "--data", str(data), "--backbone", "resnet18", "--no-pretrained",
                            "--image-size", "64", "--epochs", "1", "--freeze-epochs", "0", "--accelerator", "cpu",
                            "--output", str(tmp / "runs"), "--name", "load"), project, env)
        run_folder = tmp / "runs" / "load"
        space = tmp / "space"
        run(project_command(project, "export", str(run_folder), "--format", "space", "--output", str(space),
                            "--parity-images", "16", "--latency-runs", "20"), project, env)
        with open(run_folder / "splits.csv", newline="") as file:
            val = [data / row["path"] for row in csv.DictReader(file) if row["split"] == "val"][:50]
        photos = [(path.name, path.read_bytes()) for path in val]
        helpers = {name: load_module(project / "tests" / f"{name}.py") for name in ("loopback", "bad_uploads")}
        huge = big_jpeg(12000, 7500)
        no_project = {key: value for key, value in env.items() if key != "PYTHONPATH"}
        commands = {"space": ([sys.executable, "app.py"], space, no_project),
                    "demo": (project_command(project, "demo", str(run_folder)), project, env)}
        results = {"export_cpu_ms_per_image": json.loads((space / "export.json").read_text())["cpu_ms_per_image"],
                   "cpu_cores": os.cpu_count()}
        for name in args.servers:
            print(f"Load test: {name} ...", flush=True)
            results[name] = load_test(name, *commands[name], photos, helpers, huge)

    failed = False
    print(f"\nexport measured {results['export_cpu_ms_per_image']} ms per image (model alone, CPU)")
    for name in args.servers:
        figures = results[name]
        for phase in ("parallel_50", "sequential_200"):
            f = figures[phase]
            print(f"{name:6s} {phase:15s} {f['ok']}/{f['requests']} answered 200, {f['busy_503']} busy (503), "
                  f"{f['errors']} errors, "
                  f"p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms")
            failed |= f["errors"] > 0
        for file, refusal in figures["refusals"].items():
            print(f"{name:6s} {file:20s} -> {refusal['status']} (expected {refusal['expected']}) in {refusal['ms']} ms")
            failed |= refusal["status"] != refusal["expected"]
        huge_result = figures["huge_photo"]
        print(f"{name:6s} 90-megapixel JPEG ({huge_result['mb']} MB) -> {huge_result['status']} in "
              f"{huge_result['ms']} ms; peak memory grew by {huge_result['peak_memory_growth_mb']} MB "
              f"(peak {huge_result['peak_memory_mb']} MB; after everything {figures['peak_memory_mb_after_all']} MB)")
        failed |= huge_result["status"] != 200
        print(f"{name:6s} peak memory after the {PARALLEL}-request burst: {figures['peak_memory_mb_after_burst']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
