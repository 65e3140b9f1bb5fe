"""zeroseg3d world: generate the synthetic driving world."""

from __future__ import annotations

import os


def run_generate(args) -> int:
    from zeroseg3d.world.generate import generate_world

    manifest = generate_world(args.out, args.sequences, args.frames, seed=args.seed,
                              start=args.start, workers=args.workers)
    print(f"wrote sequences {', '.join(manifest['sequences'])} to {args.out}")
    return 0


def add_parser(commands) -> None:
    world = commands.add_parser("world", help="the synthetic world: generate scenes")
    sub = world.add_subparsers(dest="world_command", metavar="ACTION")
    sub.required = True
    gen = sub.add_parser("generate", help="write synthetic sequences in SemanticKITTI layout")
    gen.add_argument("--out", required=True, help="output root (gets sequences/XX/...)")
    gen.add_argument("--sequences", type=int, default=2, help="number of sequences (streets)")
    gen.add_argument("--frames", type=int, default=10, help="frames per sequence")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--start", type=int, default=0, help="number of the first sequence")
    gen.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                     help="processes rendering frames in parallel")
    gen.set_defaults(run=run_generate)
