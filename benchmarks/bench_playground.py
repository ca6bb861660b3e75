"""The playground with its page open: training steps/s, the page's frames/s, and memory.

    PYTHONPATH=src python benchmarks/bench_playground.py [--seconds 20] [--repeats 3]
                                                          [--minutes 10] [--json out.json]

Starts ``deltaprop playground`` in its own process on 2-8-8-2 (``--hidden 8,8``) over circles
(500 points, half for training) at batch size 10, opens the page in Debian's Chromium through
Playwright (headless) and presses play. Then, over ``--repeats`` windows of ``--seconds``:

- steps/s: the server's step counter (``GET /api/state``) over the window;
- frames/s: the frames the page drew (``window.deltaprop.stats.frames``) over the window;
- Chromium's CPU time per frame drawn: all its processes' CPU time over the window divided
  by the frames (less sensitive to other work on the machine than frames/s).

The same windows without a page (no frames asked for) give the frames' cost. With
``--minutes M`` the page keeps playing M minutes more while the server's resident memory
(VmRSS) is sampled every 10 s; the report gives its first, last and largest value and the
growth per minute of a least-squares line through the samples after the first minute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def machine() -> dict[str, Any]:
    import numpy  # noqa: F401  (loads the BLAS the server uses, for threadpool_info)
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    blas = [{k: p.get(k) for k in ("internal_api", "version", "architecture")}
            for p in threadpool_info()]
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average": os.getloadavg(), "blas": blas}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chromium_seconds() -> float:
    """CPU time of every Chromium process (browser, renderer, GPU and utility processes)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    program = f.read(300).split(b"\0", 1)[0].split(b" ", 1)[0]  # retitled
                if os.path.basename(program) == b"chromium":  # /usr/lib/chromium/chromium
                    total += cpu_seconds(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return total


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deltaprop", "playground", "--no-browser", "--port", "0",
             "--hidden", "8,8", "--data", "circles"],
            stdout=subprocess.PIPE, text=True, env=env)
        self.url = self.proc.stdout.readline().split()[-1]

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "api/state") as r:
            return json.load(r)

    def control(self, action: str) -> None:
        request = urllib.request.Request(self.url + "api/control",
                                         data=json.dumps({"action": action}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request).read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def window(server: Server, seconds: float, page: Any = None) -> dict[str, float]:
    """steps/s (and frames/s, with a page) over ``seconds``, and the cores each side used."""
    frames = "window.deltaprop.stats.frames"
    s0, t0 = server.state()["step"], time.perf_counter()
    c0, b0 = cpu_seconds(server.proc.pid), chromium_seconds()
    f0 = page.evaluate(frames) if page is not None else 0
    if page is not None:
        page.wait_for_timeout(seconds * 1000)
    else:
        time.sleep(seconds)
    f1 = page.evaluate(frames) if page is not None else 0
    c1, b1 = cpu_seconds(server.proc.pid), chromium_seconds()
    s1, t1 = server.state()["step"], time.perf_counter()
    dt = t1 - t0
    result = {"steps_per_s": (s1 - s0) / dt, "frames_per_s": (f1 - f0) / dt,
              "server_cores": (c1 - c0) / dt, "chromium_cores": (b1 - b0) / dt,
              "load_average": os.getloadavg()[0]}
    if f1 > f0:
        result["chromium_ms_per_frame"] = (b1 - b0) / (f1 - f0) * 1e3
    return result


def frame_cost(repeats: int = 200) -> dict[str, float]:
    """CPU time of one frame and of one training step, in this process, one BLAS thread."""
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(ROOT / "src"))
    from deltaprop.playground import frames
    from deltaprop.playground.session import Session

    session = Session({"hidden": [8, 8]})
    session.control("step", steps=1000)
    snap = session.snapshot()
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(5):
            frames.encode(snap)
        started = time.process_time()
        for _ in range(repeats):
            frames.encode(snap)
        frame_ms = (time.process_time() - started) / repeats * 1e3
        started = time.process_time()
        for _ in range(20 * repeats):
            session.run.trainer.step()
        step_us = (time.process_time() - started) / (20 * repeats) * 1e6
    return {"frame_cpu_ms": frame_ms, "step_cpu_us": step_us}


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.0f}  (min {min(values):.0f}, max {max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    info = machine()
    result: dict[str, Any] = {"machine": info, "no_page": [], "page": [], "memory": []}
    server = Server()
    try:
        server.control("play")
        time.sleep(2)
        for _ in range(args.repeats):
            result["no_page"].append(window(server, args.seconds))
        server.control("reset")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server.url)
            page.wait_for_function("window.deltaprop && window.deltaprop.stats.frames > 0")
            page.get_by_test_id("play-pause").click()
            page.wait_for_timeout(2000)
            for _ in range(args.repeats):
                result["page"].append(window(server, args.seconds, page))
            start = time.perf_counter()
            while time.perf_counter() - start < args.minutes * 60:
                sample = window(server, 10, page)
                sample["minute"] = (time.perf_counter() - start) / 60
                sample["rss_mb"] = rss_mb(server.proc.pid)
                sample["step"] = server.state()["step"]
                result["memory"].append(sample)
                print(f"  {sample['minute']:5.2f} min  RSS {sample['rss_mb']:6.1f} MB  "
                      f"{sample['steps_per_s']:6.0f} steps/s  {sample['frames_per_s']:4.1f} "
                      f"frames/s  step {sample['step']}", flush=True)
            browser.close()
    finally:
        server.stop()

    print(f"\ndeltaprop playground, 2-8-8-2 on circles (500 points), batch 10; CPU {info['cpu']}, "
          f"{info['cores']} cores, load average {info['load_average'][0]:.2f} at the start; "
          f"BLAS {info['blas']}")
    print("                          median   over windows of "
          f"{args.seconds:g} s, {args.repeats} windows")
    print("steps/s, no page         " + summary([w["steps_per_s"] for w in result["no_page"]]))
    print("steps/s, page open       " + summary([w["steps_per_s"] for w in result["page"]]))
    print("frames/s in the page     " + summary([w["frames_per_s"] for w in result["page"]]))
    for key, label in (("server_cores", "server's cores, page open"),
                       ("chromium_cores", "Chromium's cores")):
        values = [w[key] for w in result["page"]]
        print(f"{label:<25}{statistics.median(values):8.2f}  (min {min(values):.2f}, "
              f"max {max(values):.2f})")
    per_frame = [w["chromium_ms_per_frame"] for w in result["page"] if "chromium_ms_per_frame" in w]
    if per_frame:
        print(f"Chromium CPU ms per frame {statistics.median(per_frame):6.1f}  "
              f"(min {min(per_frame):.1f}, max {max(per_frame):.1f})")
    loads = [w["load_average"] for w in result["no_page"] + result["page"]]
    print(f"load average during the windows: {min(loads):.2f} to {max(loads):.2f} "
          f"(2 cores: above 2, other work competed for them)")
    cost = frame_cost()
    result["cost"] = cost
    print(f"CPU time of one frame {cost['frame_cpu_ms']:.1f} ms, of one training step "
          f"{cost['step_cpu_us']:.0f} µs (in this process, one BLAS thread)")
    memory = result["memory"]
    if memory:
        later = [m for m in memory if m["minute"] >= 1] or memory
        xs, ys = [m["minute"] for m in later], [m["rss_mb"] for m in later]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
                 / max(sum((x - mx) ** 2 for x in xs), 1e-12))
        result["rss_slope_mb_per_min"] = slope
        print(f"memory over {memory[-1]['minute']:.1f} min: "
              f"RSS first {memory[0]['rss_mb']:.1f} MB, "
              f"last {memory[-1]['rss_mb']:.1f} MB, max {max(m['rss_mb'] for m in memory):.1f} MB; "
              f"after the first minute {slope:+.3f} MB/min; "
              f"{memory[-1]['step']} steps")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
