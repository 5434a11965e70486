"""Collect the accuracy and speed results into docs/boundedkde/benchmarks.md.

Reads the JSON files written by ``accuracy.py`` (one or several, e.g. one per sample
size; their rows are merged) and ``speed.py``, checks the targets of issue 2 and writes
one Markdown report atomically. Targets are reported as met or missed exactly as
measured; a contestant that is missing makes its target "not measured".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _benchutil import atomic_write_text, utc_now

#: Issue 2 targets.
SPEED_RATIO_TARGET = 1.3
POLE_RATIO_TARGET = 5.0
DENSITY_WINS_TARGET = 5
SPEED_PEERS = ("arviz", "kdepy_isj", "kdepy_silverman", "statsmodels")


def fmt(v: float | None, digits: int = 3) -> str:
    """Compact number: 3 significant digits, '—' for missing."""
    if v is None:
        return "—"
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.{digits}g}"
    return f"{v:.{digits - 1}e}"


def load(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        with p.open(encoding="utf-8") as fh:
            out.append(json.load(fh))
    return out


def merge_accuracy(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Merge accuracy results of several runs (rows concatenated; later runs win on duplicates)."""
    if not parts:
        return None
    merged = dict(parts[0])
    rows: dict[tuple[str, int, str], dict[str, Any]] = {}
    sizes: list[int] = []
    walls = 0.0
    for part in parts:
        for r in part["rows"]:
            rows[(r["density"], r["n"], r["contestant"])] = r
        sizes += [n for n in part["settings"]["sizes"] if n not in sizes]
        walls += part["settings"].get("wall_seconds", 0.0)
    merged["rows"] = list(rows.values())
    merged["settings"] = dict(parts[0]["settings"], sizes=sorted(sizes), wall_seconds=round(walls, 1))
    merged["quick"] = any(p["quick"] for p in parts)
    reps = {p["settings"]["reps"] for p in parts}
    if len(reps) > 1:
        merged["settings"]["reps"] = "/".join(str(r) for r in sorted(reps))
    return merged


def machine_section(machine: dict[str, Any]) -> list[str]:
    v = machine["versions"]
    th = machine["threads"]
    lines = [
        "## Machine and versions",
        "",
        "| item | value |",
        "|---|---|",
        f"| CPU | {machine['cpu_model']} |",
        f"| logical CPUs / usable by this process | {machine['logical_cpus']} / {machine['usable_cpus']} |",
        f"| load average (1, 5, 15 min) when the (speed) results were written | {', '.join(str(x) for x in machine['load_average_1_5_15'])} |",
        f"| platform | {machine['platform']} |",
        f"| Python | {machine['python']} |",
    ]
    lines += [f"| {name} | {ver} |" for name, ver in v.items()]
    src = machine.get("boundedkde_source")
    if src:
        lines.append(f"| boundedkde source benchmarked (path; sha256 of its .py files, 16 hex) "
                     f"| {src['path']}; {src['sha256']} |")
    env = ", ".join(f"{k}={val}" for k, val in th["env"].items())
    lines += [f"| thread environment | {env} |", ""]
    return lines


def threads_section(speed: dict[str, Any]) -> list[str]:
    pools = speed.get("threads_after_imports", {}).get("pools", [])
    lines = ["Thread pools loaded after importing every contestant (threadpoolctl):", ""]
    if isinstance(pools, list) and pools:
        lines += [f"- {p['api']} / {p['library']} {p.get('version') or ''}: {p['num_threads']} threads" for p in pools]
    else:
        lines.append(f"- {pools or 'none reported'}")
    lines += [
        "",
        "numpy's FFT (pocketfft) and `np.bincount` are single-threaded, so the floor runs on one "
        "core whatever the BLAS/OpenMP settings; the BLAS threads above matter only to code that "
        "calls BLAS. All contestants ran in one process, one call at a time.",
        "",
    ]
    return lines


def accuracy_section(acc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The MISE tables and the target verdicts (returned separately)."""
    s = acc["settings"]
    dens = acc["densities"]
    contestants = [c for c in acc["contestants"]]
    rows = {(r["density"], r["n"], r["contestant"]): r for r in acc["rows"]}
    sizes = sorted({r["n"] for r in acc["rows"]})
    dkeys = [d for d in dens if any(r["density"] == d for r in acc["rows"])]

    lines = [
        "## Accuracy: mean integrated squared error",
        "",
        f"{s['reps']} seeded replications per cell (replication r of density d at size n uses "
        f"`SeedSequence([{s['seed']}, d, n, r])`; every contestant sees the same sample). "
        f"ISE = integral of (fhat - f)^2 by the composite midpoint rule on {s['cells']} equal cells "
        f"covering [0, U]: U = 1 for the densities on [0,1], U = the {s['tail_quantile']} quantile "
        "for Exponential(1) (9.21) and the half-normal (3.89). Midpoints never touch a bound. "
        "The pole's f^2 = 1/(4x) is not integrable at 0, so its ISE is a truncated quantity that "
        "depends on the cell count (the first cell alone adds about 1/2 for any estimator finite at 0); "
        f"the same protocol applies to every contestant, and the pole's ISE on [{s['pole_trim']}, 1] is "
        "given below as well. Grid-based peers are evaluated by linear interpolation of their own grid.",
        "",
    ]
    avail = [c for c in contestants if c["available"]]
    unavailable = [c for c in contestants if not c["available"]]
    header = "| density | n | " + " | ".join(c["label"] for c in avail) + " | default / GetDist | auto chose |"
    lines += [header, "|---|---|" + "---|" * (len(avail) + 2)]
    for d in dkeys:
        for n in sizes:
            cells = []
            for c in avail:
                r = rows.get((d, n, c["key"]))
                if r is None or r["mise"] is None:
                    cells.append("failed" if r is not None and r["failures"] else "—")
                    continue
                mark = f" ({r['failures']} failed)" if r["failures"] else ""
                cells.append(fmt(r["mise"]) + mark)
            ours = rows.get((d, n, "ours_auto"))
            gd = rows.get((d, n, "getdist"))
            ratio = (ours["mise"] / gd["mise"]) if ours and gd and ours["mise"] and gd["mise"] else None
            chose = ", ".join(f"{k.split('=', 1)[1]} x{v}" for k, v in sorted((ours or {}).get("tally", {}).items()))
            lines.append(f"| {dens[d]['label']} | {n} | " + " | ".join(cells) + f" | {fmt(ratio)} | {chose or '—'} |")
    lines.append("")
    if unavailable:
        lines += ["Not available in this run: " + "; ".join(f"{c['label']} ({c['reason']})" for c in unavailable), ""]
    notes = [f"- {c['label']}: {c['note']}" for c in avail if c.get("note")]
    for r in acc["rows"]:
        if r["contestant"] == "ours_auto" or not r.get("tally"):
            continue
        for what, count in sorted(r["tally"].items()):
            if "method_" not in what:
                notes.append(f"- {what}: {count} of {r['reps_ok']} replications "
                             f"({dens[r['density']]['label']}, n={r['n']})")
    labels = {c["key"]: c["label"] for c in contestants}
    for r in acc["rows"]:
        for msg, count in sorted(r.get("logged", {}).items()):
            notes.append(f"- {labels.get(r['contestant'], r['contestant'])} logged `{msg}` {count} times "
                         f"({dens[r['density']]['label']}, n={r['n']})")
    errors = [r for r in acc["rows"] if r["failures"]]
    notes += [f"- {r['contestant']} failed {r['failures']} times on {dens[r['density']]['label']}, n={r['n']}: "
              f"`{r['error']}`" for r in errors]
    if notes:
        lines += ["Notes:", "", *notes, ""]

    if "pole" in dkeys:
        lines += [f"Pole, ISE restricted to [{s['pole_trim']}, 1] (MISE):", "",
                  "| n | " + " | ".join(c["label"] for c in avail) + " |",
                  "|---|" + "---|" * len(avail)]
        for n in sizes:
            vals = [fmt(rows.get(("pole", n, c["key"]), {}).get("mise_trim")) for c in avail]
            lines.append(f"| {n} | " + " | ".join(vals) + " |")
        lines.append("")

    # standard errors, compactly, for the two main columns
    lines += ["Standard errors of the MISE (std / sqrt(reps)) for the default and GetDist:", "",
              "| density | n | default | GetDist |", "|---|---|---|---|"]
    for d in dkeys:
        for n in sizes:
            a = rows.get((d, n, "ours_auto"), {})
            g = rows.get((d, n, "getdist"), {})
            lines.append(f"| {dens[d]['label']} | {n} | {fmt(a.get('se'))} | {fmt(g.get('se'))} |")
    lines.append("")

    verdicts = ["### Accuracy targets", ""]
    for n in sizes:
        wins, losses, measured = 0, [], 0
        for d in dkeys:
            a = rows.get((d, n, "ours_auto"), {}).get("mise")
            g = rows.get((d, n, "getdist"), {}).get("mise")
            if a is None or g is None:
                continue
            measured += 1
            if a <= g:
                wins += 1
            else:
                losses.append(f"{dens[d]['label']} ({fmt(a / g)}x GetDist's MISE)")
        if measured < len(dens):
            verdicts.append(f"- n={n}: default <= GetDist on >= {DENSITY_WINS_TARGET} of {len(dens)} densities: "
                            f"**not measured** (only {measured} densities have both results; "
                            f"default wins {wins} of them)")
            continue
        ok = wins >= DENSITY_WINS_TARGET
        verdicts.append(f"- n={n}: default <= GetDist on {wins} of {measured} densities "
                        f"(target >= {DENSITY_WINS_TARGET}): **{'MET' if ok else 'MISSED'}**"
                        + (f"; loses on {', '.join(losses)}" if losses else ""))
    for n in sizes:
        a = rows.get(("pole", n, "ours_auto"), {})
        rf = rows.get(("pole", n, "ours_reflect"), {})
        if a.get("mise") is None or rf.get("mise") is None:
            verdicts.append(f"- pole, n={n}: auto >= {POLE_RATIO_TARGET:g}x better than reflect: **not measured**")
            continue
        ratio = rf["mise"] / a["mise"]
        trim = (rf["mise_trim"] / a["mise_trim"]) if a.get("mise_trim") else None
        verdicts.append(f"- pole, n={n}: MISE(reflect) / MISE(auto) = {fmt(ratio)} (target >= "
                        f"{POLE_RATIO_TARGET:g}): **{'MET' if ratio >= POLE_RATIO_TARGET else 'MISSED'}**"
                        f" (on [{s['pole_trim']}, 1]: {fmt(trim)})")
    verdicts.append("")
    return lines, verdicts


def speed_section(speed: dict[str, Any]) -> tuple[list[str], list[str]]:
    s = speed["settings"]
    rows = {r["key"]: r for r in speed["rows"]}
    floor = rows.get("floor", {}).get("median_s")
    lines = [
        "## Speed",
        "",
        f"n = {s['n']:,} draws of {s['data']}, {s['grid']}-point grid, bandwidth selection included "
        f"(the floor uses a fixed h = {fmt(s['floor_bw'])}, Silverman's rule computed outside the timer). "
        f"One warm-up call, then {s['repeats']} timed rounds visiting the contestants in turn "
        "(2 for a contestant whose call takes over 10 s); "
        "median and minimum seconds per call; ratio = median / floor's median. "
        "'mass' is the trapezoid integral of the returned grid over [0, inf) (a sanity check; the floor "
        "and statsmodels have no boundary correction and lose mass at 0).",
        "",
        "| contestant | n | median s | min s | ratio to floor | mass | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in speed["rows"]:
        if r["median_s"] is None:
            why = r["error"] or "not available"
            lines.append(f"| {r['label']} | — | — | — | — | — | not available: {why} |")
            continue
        ratio = r["median_s"] / floor if floor else None
        lines.append(f"| {r['label']} | {r['n']:,} | {fmt(r['median_s'])} | {fmt(r['min_s'])} | "
                     f"{fmt(ratio)} | {fmt(r['mass'], 4)} | {r['note']} |")
    lines.append("")
    machine = speed.get("machine", {})
    load = machine.get("load_average_1_5_15") or []
    cpus = machine.get("usable_cpus") or 0
    if load and cpus and max(load) > cpus:
        lines += [f"The machine was shared while this ran (load average {', '.join(str(v) for v in load)} "
                  f"on {cpus} CPUs when the results were written): absolute times are inflated and the "
                  "ratios are noisy; the interleaved rounds spread the noise over all contestants alike. "
                  "Compare medians with minima to judge the noise.", ""]

    verdicts = ["### Speed targets", ""]
    ours = rows.get("ours_auto", {})
    if ours.get("median_s") is None or floor is None:
        verdicts += ["- default <= 1.3x floor and faster than ArviZ, KDEpy, statsmodels: **not measured**", ""]
        return lines, verdicts
    ratio = ours["median_s"] / floor
    verdicts.append(f"- default: {fmt(ratio)}x the floor (target <= {SPEED_RATIO_TARGET}): "
                    f"**{'MET' if ratio <= SPEED_RATIO_TARGET else 'MISSED'}**")
    chunked = rows.get("floor_chunked", {}).get("median_s")
    if chunked:
        verdicts.append(f"- default against the floor with chunked binning (the technique boundedkde "
                        f"uses): {fmt(ours['median_s'] / chunked)}x")
    fastest = min((r for k, r in rows.items() if k.startswith("ours_") and r["median_s"] is not None),
                  key=lambda r: r["median_s"])
    fr = fastest["median_s"] / floor
    verdicts.append(f"- fastest boundedkde method: {fastest['label']} at {fmt(fr)}x the floor "
                    f"({'within' if fr <= SPEED_RATIO_TARGET else 'above'} {SPEED_RATIO_TARGET}x)")
    for key in SPEED_PEERS:
        peer = rows.get(key)
        if peer is None or peer["median_s"] is None:
            verdicts.append(f"- faster than {key}: **not measured** (peer not available)")
            continue
        if peer["n"] != ours["n"]:
            verdicts.append(f"- faster than {peer['label']}: **not comparable** (peer ran at n={peer['n']})")
            continue
        faster = ours["median_s"] < peer["median_s"]
        verdicts.append(f"- faster than {peer['label']} ({fmt(peer['median_s'])} s): "
                        f"**{'MET' if faster else 'MISSED'}** ({fmt(peer['median_s'] / ours['median_s'])}x)")
    verdicts.append("")
    return lines, verdicts


def build_report(acc: dict[str, Any] | None, speed: dict[str, Any] | None, command: str) -> str:
    quick = bool((acc and acc["quick"]) or (speed and speed["quick"]))
    machine = (speed or acc or {}).get("machine")
    out = [
        "# boundedkde benchmarks",
        "",
        "<!-- generated by packages/boundedkde/benchmarks/report.py; do not edit by hand -->",
        "",
        f"Generated {utc_now()} by `{command}`. Benchmarks are measurements, not tests: the "
        "targets below come from issue 2 and are reported as measured, met or missed.",
        "",
    ]
    if quick:
        out += ["> **QUICK MODE** (smoke run: fewer replications / smaller n). These figures do not "
                "follow the issue's protocol; run `make bench` without BENCH_QUICK for the real ones.", ""]
    acc_lines: list[str] = []
    acc_verdicts: list[str] = ["### Accuracy targets", "", "- **not measured** (no accuracy results)", ""]
    sp_lines: list[str] = []
    sp_verdicts: list[str] = ["### Speed targets", "", "- **not measured** (no speed results)", ""]
    if acc is not None:
        acc_lines, acc_verdicts = accuracy_section(acc)
    if speed is not None:
        sp_lines, sp_verdicts = speed_section(speed)
    out += ["## Targets", "", *acc_verdicts[2:], *sp_verdicts[2:]]
    out += acc_lines + sp_lines
    if speed is not None:
        out += threads_section(speed)
    if machine:
        out += machine_section(machine)
    if acc is not None:
        out += [f"Accuracy wall time: {acc['settings'].get('wall_seconds')} s.", ""]
    out += [
        "## Reproduce",
        "",
        "```",
        "make bench-boundedkde                  # full protocol (issue 2); peers go into .venv-bench",
        "BENCH_QUICK=1 make bench-boundedkde    # smoke run; writes out/bench/boundedkde/quick/benchmarks-quick.md",
        "```",
        "",
        "The scripts are `packages/boundedkde/benchmarks/accuracy.py`, `speed.py` and `report.py` "
        "(each has `--help`).",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--accuracy", type=Path, nargs="*", default=[], help="accuracy JSON file(s)")
    p.add_argument("--speed", type=Path, default=None, help="speed JSON file")
    p.add_argument("--out", type=Path, required=True, help="Markdown file to write (atomically)")
    p.add_argument("--command", default="make bench", help="command line to quote in the report")
    args = p.parse_args(argv)
    acc_paths = [a for a in args.accuracy if a.exists()]
    missing = [str(a) for a in args.accuracy if not a.exists()]
    if args.speed is not None and not args.speed.exists():
        missing.append(str(args.speed))
    if missing:
        print(f"[report] missing inputs (reported as not measured): {', '.join(missing)}", file=sys.stderr)
    acc = merge_accuracy(load(acc_paths))
    speed = load([args.speed])[0] if args.speed is not None and args.speed.exists() else None
    if acc is None and speed is None:
        raise SystemExit("[report] no results to report; run accuracy.py and/or speed.py first")
    atomic_write_text(args.out, build_report(acc, speed, args.command))
    print(f"[report] wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
