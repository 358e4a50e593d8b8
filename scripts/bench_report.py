#!/usr/bin/env python3
"""The report of scripts/bench-restore.sh: reads its TSV (set, version, scale, step, round, seconds,
peak RSS KiB, COPY bytes, the tool's own CPU seconds) and prints per run its median and range over the rounds, per ratio its
median and range (drkit's run over the anchor's run of the same round) against the issue's targets,
and, for a set run at several scales, seconds per GB and an SVG chart of time against size.
With --main, the report of scripts/bench.sh's own rounds instead (its steps.tsv)."""
import argparse
import collections
import statistics
import sys

TARGETS = {  # (set, ratio) -> the most drkit / anchor may be
    ("mixed", "restore"): 0.75,
    ("mixed", "backup"): 0.55,
    ("many", "restore"): 0.60,
    ("many", "backup"): 1.00,
}
PAIRS = {"backup": ("drkit_backup", "pg_dump"), "restore": ("drkit_restore", "pg_restore")}
ANCHOR_NAMES = {
    ("mixed", "pg_dump"): "pg_dump -Fc", ("mixed", "pg_restore"): "pg_restore -j2",
    ("many", "pg_dump"): "pg_dump -Fd -j2", ("many", "pg_restore"): "pg_restore -j2",
}


def spread(values):
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


# bench.sh's own rounds: (label, drkit's step, the anchor's step, what is compared, target or None)
MAIN_RATIOS = [
    ("backup / pg_dump -Fc", "drkit_backup", "pg_dump_fc", "time", 0.55),
    ("backup / raw serial COPY", "drkit_backup", "raw_copy", "time", 1.2),
    ("archive size / pg_dump -Fc", "drkit_backup", "pg_dump_fc", "size", 1.05),
    ("S3 backup / pg_dump -Fc | aws s3 cp -", "drkit_backup_s3", "pg_dump_aws_s3", "time", 1.0),
    ("restore / pg_restore -j2", "drkit_restore", "pg_restore_j2", "time", 0.8),
    ("S3 restore / aws s3 cp + pg_restore -j2", "drkit_restore_s3", "aws_s3_pg_restore", "time", 0.8),
    ("{n} tables backup / pg_dump -Fd -j2", "many_drkit_backup", "many_pg_dump_fd_j2", "time", 1.0),
    ("{n} tables restore / pg_restore -j2", "many_drkit_restore", "many_pg_restore_j2", "time", 0.6),
]


def main_rounds(path, small_tables):
    """Per step its median [range] of seconds, its archive size and peak RSS; per ratio drkit's run over
    the anchor's run of the same round, median [range], against the target."""
    times = collections.defaultdict(dict)  # step -> round -> (secs, rss KiB, cpu)
    sizes = collections.defaultdict(dict)  # step -> round -> bytes
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "time" and fields[2] != "0":
                times[fields[1]][int(fields[2])] = (float(fields[3]), int(fields[4]), float(fields[5]))
            elif fields[0] == "size" and fields[2] != "0":
                sizes[fields[1]][int(fields[2])] = int(fields[3])
    rounds = max((len(r) for r in times.values()), default=0)
    print(f"\n{rounds} interleaved rounds")
    print(f"  {'run':<20} {'seconds: median [range]':>26} {'size MiB':>9} {'peak RSS MiB':>13} {'own CPU s':>10}")
    for step, by_round in times.items():
        secs = [s for s, _, _ in by_round.values()]
        size = f"{statistics.median(sizes[step].values()) / 2**20:.1f}" if step in sizes else ""
        rss = max(r for _, r, _ in by_round.values()) / 1024
        cpu = statistics.median(c for _, _, c in by_round.values())
        print(f"  {step:<20} {spread(secs):>26} {size:>9} {rss:>13.0f} {cpu:>10.1f}")
    failed = []
    for label, ours, anchor, kind, target in MAIN_RATIOS:
        table = times if kind == "time" else sizes
        common = sorted(set(table.get(ours, {})) & set(table.get(anchor, {})))
        if not common:
            continue
        value = (lambda step, r: table[step][r][0]) if kind == "time" else (lambda step, r: table[step][r])
        values = [value(ours, r) / value(anchor, r) for r in common]
        median = statistics.median(values)
        label = label.format(n=small_tables)
        if median > target:
            failed.append(label)
        print(f"  ratio {label:<44} {spread(values):>20}  (target <= {target:.2f}: {'met' if median <= target else 'NOT met'})")
    drkit_rss = [r for step, by_round in times.items() if "drkit" in step for _, r, _ in by_round.values()]
    if drkit_rss:
        peak = max(drkit_rss) / 1024
        print(f"  drkit peak RSS {peak:.0f} MiB (target <= 256: {'met' if peak <= 256 else 'NOT met'})")
        if peak > 256:
            failed.append("peak RSS")
    print("targets not met: " + ("; ".join(failed) if failed else "none"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--chart")
    parser.add_argument("--main", action="store_true", help="results is bench.sh's steps.tsv")
    parser.add_argument("--small-tables", type=int, default=2000)
    args = parser.parse_args()
    if args.main:
        return main_rounds(args.results, args.small_tables)
    runs = collections.defaultdict(dict)  # (set, version, scale) -> step -> round -> (secs, rss KiB)
    copy_bytes = {}
    own_cpu = {}
    with open(args.results) as f:
        for line in f:
            data_set, version, scale, step, rnd, secs, rss, nbytes, cpu = line.rstrip("\n").split("\t")
            key = (data_set, int(version), float(scale))
            runs[key].setdefault(step, {})[int(rnd)] = (float(secs), int(rss))
            own_cpu.setdefault(key, {}).setdefault(step, []).append(float(cpu))
            copy_bytes[key] = int(nbytes)
    failed = []
    for key in sorted(runs):
        data_set, version, scale = key
        steps = runs[key]
        size = f", {copy_bytes[key] / 2**30:.2f} GiB of COPY text" if copy_bytes[key] else ""
        anchor18 = " (pg_dump --statistics, pg_restore --transaction-size 1000)" if version >= 18 else ""
        label = f"{int(scale)} tables" if data_set == "many" else f"scale {scale:g}{size}"
        print(f"\n{data_set} set, PostgreSQL {version}{anchor18}, {label}")
        print(f"  {'run':<16} {'seconds: median [range]':>26} {'peak RSS MiB':>13} {'own CPU s':>10}")
        for step in ("pg_dump", "drkit_backup", "pg_restore", "drkit_restore"):
            if step not in steps:
                continue
            secs = [s for s, _ in steps[step].values()]
            rss = max(r for _, r in steps[step].values()) / 1024
            name = ANCHOR_NAMES.get((data_set, step), step)
            cpu = statistics.median(own_cpu[key][step])
            print(f"  {name:<16} {spread(secs):>26} {rss:>13.0f} {cpu:>10.1f}")
        for ratio, (ours, anchor) in PAIRS.items():
            if ours not in steps or anchor not in steps:
                continue
            rounds = sorted(set(steps[ours]) & set(steps[anchor]))
            values = [steps[ours][r][0] / steps[anchor][r][0] for r in rounds]
            target = TARGETS.get((data_set, ratio))
            median = statistics.median(values)
            verdict = "" if target is None else f"  (target <= {target:.2f}: {'met' if median <= target else 'NOT met'})"
            if target is not None and median > target:
                failed.append(f"{data_set} {ratio} on {version} at {label}")
            print(f"  ratio {ratio:<8} drkit / {ANCHOR_NAMES.get((data_set, anchor), anchor)}: {spread(values)}{verdict}")
        rss_ok = all(r / 1024 <= 256 for step in ("drkit_backup", "drkit_restore") for _, r in steps.get(step, {}).values())
        print(f"  drkit peak RSS <= 256 MiB: {'met' if rss_ok else 'NOT met'}")
        if not rss_ok:
            failed.append(f"{data_set} RSS on {version} at {label}")
    linearity(runs, copy_bytes, args.chart, failed)
    print("\ntargets not met: " + ("; ".join(failed) if failed else "none"))


def linearity(runs, copy_bytes, chart, failed):
    """Seconds per GiB of COPY text at each scale of the mixed set, against the smallest scale's."""
    by_version = collections.defaultdict(list)
    for (data_set, version, scale) in runs:
        if data_set == "mixed":
            by_version[version].append(scale)
    series = {}
    for version, scales in sorted(by_version.items()):
        if len(scales) < 2:
            continue
        scales.sort()
        print(f"\nmixed set on PostgreSQL {version}: seconds per GiB of COPY text (median), and against scale {scales[0]:g}")
        base = {}
        for scale in scales:
            key = ("mixed", version, scale)
            gib = copy_bytes[key] / 2**30
            cells = []
            for step in ("pg_dump", "drkit_backup", "pg_restore", "drkit_restore"):
                median = statistics.median(s for s, _ in runs[key][step].values())
                per = median / gib
                base.setdefault(step, per)
                series.setdefault((version, step), []).append((gib, median))
                drift = per / base[step] - 1
                cells.append(f"{step} {per:6.1f} s/GiB ({drift:+.0%})")
                if step.startswith("drkit") and abs(drift) > 0.15:
                    failed.append(f"{step} on {version} at scale {scale:g} is {drift:+.0%} per GiB against scale {scales[0]:g}")
            rss = max(r for step in ("drkit_backup", "drkit_restore") for _, r in runs[key][step].values()) / 1024
            print(f"  scale {scale:<5g} {gib:6.2f} GiB  " + "  ".join(cells) + f"  drkit peak RSS {rss:.0f} MiB")
    if chart and series:
        write_chart(series, chart)
        print(f"\nchart: {chart}")


def write_chart(series, path):
    """A plain SVG line chart, seconds against GiB, one line per tool and version."""
    width, height, left, bottom, top, right = 760, 440, 70, 50, 30, 230
    max_x = max(x for points in series.values() for x, _ in points)
    max_y = max(y for points in series.values() for _, y in points)
    sx = lambda x: left + x / max_x * (width - left - right)
    sy = lambda y: height - bottom - y / max_y * (height - bottom - top)
    colors = {"pg_dump": "#888888", "drkit_backup": "#1f77b4", "pg_restore": "#d62728", "drkit_restore": "#2ca02c"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">drkit and the anchors: wall time against size (mixed set)</text>',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
           f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">GiB of COPY text</text>',
           f'<text x="16" y="{(top + height - bottom) / 2}" transform="rotate(-90 16 {(top + height - bottom) / 2})" text-anchor="middle">seconds</text>']
    for i in range(5):
        y, x = max_y * i / 4, max_x * i / 4
        out.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
        out.append(f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:.2f}</text>')
    for n, ((version, step), points) in enumerate(sorted(series.items())):
        dash = ' stroke-dasharray="6 3"' if version >= 18 else ""
        path_points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path_points}" fill="none" stroke="{colors[step]}" stroke-width="2"{dash}/>')
        for x, y in points:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colors[step]}"/>')
        ly = top + 14 + n * 18
        out.append(f'<line x1="{width - right + 12}" y1="{ly - 4}" x2="{width - right + 36}" y2="{ly - 4}" stroke="{colors[step]}" stroke-width="2"{dash}/>')
        name = ANCHOR_NAMES.get(("mixed", step), step.replace("_", " "))
        out.append(f'<text x="{width - right + 42}" y="{ly}">{name} (PostgreSQL {version})</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main())
