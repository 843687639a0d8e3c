#!/usr/bin/env python3
"""Objects placed from contact (reconstruction.place_object) on synthetic scenes: object error
and time per object.

    python benchmarks/joint_fit.py [--per-scene 12] [--seed 0] [--box-noise-px 2] [--contact-noise 0.1]
                                   [--size-error 0] [--set name=value ...] [--verbose]

Scenes (tests/object_scenes.py): a person of tests/body_poses.py's poses (handing over,
reaching forward, holding at chest height, carrying a box; every joint jittered by 0.05 rad),
1.5-4 m in front of a 640 x 480 camera (focal 525 px), touching an object turned at random
that came towards the hand (or the chest) until it touched the body: a cup (cylinder proxy,
0.12 m), a box (box proxy, 0.3 m), a ball (sphere proxy, 0.22 m), a mug (a 10 cm cylinder with
a ring handle: asymmetric). The fit gets the true body, contact maps from the truth (vertices
within 2 cm of the other surface, soft-edged, scaled by U(0.75, 1), plus Gaussian noise of
--contact-noise, clipped) and the placed mesh's projected box with Gaussian noise of
--box-noise-px per side.

Figures, per object and over all scenes: the symmetric Chamfer distance between the object's
surface placed by the fit and by the truth (2000 surface points, mean of the two mean
nearest-neighbour distances, cm), the rotation error (degrees; the mug, and the box up to its
8 symmetries; the cup and the ball have a continuous symmetry and none), the share of fits
that say ``converged``, how deep the placed object ends in the body (the verdict's
``penetration_m``, cm) and time per object (``place_object`` alone, wall and CPU ms). Every fit
counts in the figures, converged or not; the converged fits' median Chamfer distance is given
apart.
``--size-error e`` gives the fit the mesh scaled by U(1 - e, 1 + e) and the scale range
[1 / (1 + e), 1 / (1 - e)], which holds the true size.
``--set name=value`` overrides a ``PlacementSettings`` field (measurements of the defaults).
The last line: ``RESULT object_cm=... rot_deg=... ms=...`` (medians).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import trimesh

from interactvlm_ros.body.fit import BodyFitter
from interactvlm_ros.geometry.mesh import TriangleMesh
from interactvlm_ros.reconstruction import PlacementSettings, place_object

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic scenes are test code
import object_scenes  # noqa: E402
from machine import describe_machine  # noqa: E402




def parse_settings(pairs: list[str]) -> PlacementSettings:
    types = {item.name: item.type for item in fields(PlacementSettings)}
    values = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in types:
            raise SystemExit(f"--set: unknown setting {name!r}; known: {', '.join(types)}")
        values[name] = int(value) if types[name] in ("int", int) else float(value)
    return PlacementSettings(**values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-scene", type=int, default=12, help="draws per scene kind (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--box-noise-px", type=float, default=2.0, help="box noise per side, pixels (default 2)")
    parser.add_argument("--contact-noise", type=float, default=0.1, help="contact map noise (default 0.1)")
    parser.add_argument("--size-error", type=float, default=0.0,
                        help="give the fit the mesh scaled by U(1 - e, 1 + e) and the scale range that holds the "
                             "truth (default 0: the true size, scale fixed)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a PlacementSettings field")
    parser.add_argument("--verbose", action="store_true", help="a line per fit")
    args = parser.parse_args()
    settings = parse_settings(args.set)
    print(describe_machine())
    maker = object_scenes.SceneMaker(BodyFitter())
    rng = np.random.default_rng(args.seed)
    samples = {}
    rows = []
    for spec in object_scenes.SCENES:
        for _ in range(args.per_scene):
            scene = maker.scene(spec, rng, box_noise_px=args.box_noise_px, contact_noise=args.contact_noise)
            mesh = scene.object_mesh
            if mesh.name not in samples:
                samples[mesh.name] = trimesh.sample.sample_surface(
                    trimesh.Trimesh(mesh.vertices, mesh.faces, process=False), 2000, seed=1)[0]
            sample = samples[mesh.name]
            given, factor, low, high = mesh, 1.0, 1.0, 1.0
            if args.size_error > 0:
                factor = rng.uniform(1.0 - args.size_error, 1.0 + args.size_error)
                given = TriangleMesh(mesh.vertices * factor, mesh.faces, name=mesh.name)
                low, high = 1.0 / (1.0 + args.size_error), 1.0 / (1.0 - args.size_error)
            cpu = time.process_time()
            result = place_object(scene.body_vertices, scene.body_normals, scene.human_contact, given,
                                  scene.object_contact, scene.box, object_scenes.INTRINSICS, min_scale=low,
                                  max_scale=high, settings=settings)
            truth = sample @ scene.rotation.T + scene.translation
            if np.all(np.isfinite(result.rotation)):
                placed = result.scale * factor * sample @ result.rotation.T
                chamfer = object_scenes.chamfer(placed + result.translation, truth) * 100
                rotation = object_scenes.rotation_error_deg(result.rotation, scene.rotation, scene.symmetries)
            else:
                chamfer, rotation = float("inf"), float("nan")
            rows.append({"object": spec[1], "scene": scene.name, "cm": chamfer, "deg": rotation,
                         "ms": result.time_ms, "cpu_ms": (time.process_time() - cpu) * 1000,
                         "converged": result.converged, "reason": result.reason,
                         "iterations": result.iterations, "penetration_cm": result.penetration_m * 100})
            if args.verbose:
                print(f"  {scene.name:<24} {chamfer:6.2f} cm {rotation:6.1f} deg {result.time_ms:6.1f} ms "
                      f"it {result.iterations:3d} {'ok' if result.converged else result.reason} "
                      f"contact {result.contact_distance_m * 100:.1f} cm iou {result.box_iou:.2f} "
                      f"pen {result.penetration_m * 100:.1f} cm")
    print(f"{len(rows)} fits ({args.per_scene} per scene kind, {len(object_scenes.SCENES)} kinds), box noise "
          f"{args.box_noise_px:g} px, contact noise {args.contact_noise:g}; settings {settings}")
    print(f"{'object':<8} {'fits':>4} {'median cm':>9} {'p90 cm':>7} {'rot deg':>7} {'converged':>9} {'ms':>6}")
    for name in object_scenes.OBJECTS:
        mine = [row for row in rows if row["object"] == name]
        if not mine:
            continue
        cm = [row["cm"] for row in mine]
        deg = [row["deg"] for row in mine if np.isfinite(row["deg"])]
        print(f"{name:<8} {len(mine):4d} {np.median(cm):9.2f} {np.percentile(cm, 90):7.2f} "
              f"{(f'{np.median(deg):7.1f}' if deg else '      -')} "
              f"{np.mean([row['converged'] for row in mine]):9.0%} {np.median([row['ms'] for row in mine]):6.1f}")
    cm = [row["cm"] for row in rows]
    deg = [row["deg"] for row in rows if np.isfinite(row["deg"])]
    ms = [row["ms"] for row in rows]
    converged = [row["cm"] for row in rows if row["converged"]]
    counts = {reason: sum(row["reason"] == reason for row in rows) for reason in sorted(set(
        row["reason"] for row in rows if row["reason"]))}
    print(f"all: median {np.median(cm):.2f} cm, p90 {np.percentile(cm, 90):.2f} cm; converged "
          f"{len(converged)}/{len(rows)} (median {np.median(converged) if converged else float('nan'):.2f} cm)"
          + ("; not converged: " + ", ".join(f"{reason} {count}" for reason, count in counts.items())
             if counts else ""))
    print(f"rotation (mug, box up to its symmetries): median {np.median(deg):.1f} deg, "
          f"share within 30 deg {np.mean(np.array(deg) < 30):.0%}")
    penetration = [row["penetration_cm"] for row in rows]
    print(f"penetration of the placed object into the body: median {np.median(penetration):.2f} cm, p90 "
          f"{np.percentile(penetration, 90):.2f} cm, max {max(penetration):.2f} cm")
    print(f"time per object: median {statistics.median(ms):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms, max "
          f"{max(ms):.1f} ms (CPU time median {statistics.median(row['cpu_ms'] for row in rows):.1f} ms); "
          f"Adam steps median {statistics.median(row['iterations'] for row in rows)}")
    print(describe_machine())
    print(f"RESULT object_cm={np.median(cm):.2f} rot_deg={np.median(deg):.1f} ms={statistics.median(ms):.1f}")


if __name__ == "__main__":
    main()
