"""The ``torchgeo-quake protocol`` subcommand: its parser and handler.

Private to :mod:`torchgeo_quake.cli`; Lightning and the protocol runner are
imported only when the command runs.
"""

from __future__ import annotations

import argparse

from ._cli_common import HelpFormatter, epilog_of, integer_type, scale_type


def _run_protocol(args: argparse.Namespace) -> int:
    """Handler of ``protocol`` (imports Lightning and the runner lazily).

    Args:
        args: parsed arguments

    Returns:
        Exit status.
    """
    from .protocols.command import protocol_cli

    return protocol_cli(args)


#: The configuration files of the paper's three input configurations.
PROTOCOL_CONFIGS: tuple[str, ...] = (
    "experiments/sar_ftp.yaml",
    "experiments/sar_ftp_dsm.yaml",
    "experiments/all_inputs.yaml",
)


def add_protocol(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the ``protocol`` subcommand.

    Args:
        subparsers: the subparser collection of the main parser
    """
    parser = subparsers.add_parser(
        "protocol",
        help="run one of the paper's evaluation protocols and write its table",
        description=(
            "Train and test every run of a protocol (configuration x split x "
            "seed) and write the paper's table (Markdown, CSV, JSON; at the "
            "best-F1 threshold of the test split and at the validation threshold) "
            "and figures (PNG) into OUT. cv: 5-fold cross-validation over all "
            "cities (Table III); loco: leave-one-city-out (Table IV); islahiye: "
            "5-fold cross-validation on Islahiye (Table V); blocked and "
            "blocked-islahiye: the same with spatially blocked folds (whole "
            "--block-size squares per fold, optionally a --buffer; not in the "
            "paper). Resumable: finished runs in OUT are not trained again."
        ),
        formatter_class=HelpFormatter,
        epilog=epilog_of(
            "protocol",
            "Every configuration is checked against its classes first: an unknown "
            "key or a wrong value stops the command before anything is written. "
            "After an interruption, run the same command again; an unfinished run "
            "resumes from its checkpoints/last.ckpt. If that file is damaged, the "
            "command stops and names it: delete it (or that run's folder) to "
            "retrain that run from its first epoch.",
        ),
    )
    parser.add_argument(
        "protocol",
        choices=("cv", "loco", "islahiye", "blocked", "blocked-islahiye"),
        help="the protocol",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(PROTOCOL_CONFIGS),
        metavar="YAML",
        help="experiment configuration files, one per input configuration "
        f"(default: {' '.join(PROTOCOL_CONFIGS)}; a path experiments/NAME.yaml "
        "that is not in the current folder is read from the copy installed with "
        "the package, so the defaults work from any folder)",
    )
    parser.add_argument("--out", required=True, help="output folder, e.g. runs/cv")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        metavar="SEED",
        help="repeat the protocol per seed (split, sampling, training; default 0)",
    )
    parser.add_argument(
        "--max-epochs",
        type=integer_type(1),
        default=None,
        help="epochs per run (default: the configuration's; 2 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small simulated scene (scale 0.1, in data/kahramanmaras-quick) and "
        "2 epochs: smoke tests and docs, minutes on a CPU",
    )
    parser.add_argument(
        "--scale",
        type=scale_type,
        default=None,
        help="size of the simulated scene in (0, 1] (default 1, or 0.1 with "
        "--quick); a scale other than 1 uses its own data root",
    )
    parser.add_argument(
        "--root",
        default=None,
        help="data root (default: the configuration's, or a per-scale root)",
    )
    splits = parser.add_argument_group("splits", "spatial blocks and selection")
    splits.add_argument(
        "--block-size",
        type=float,
        default=None,
        metavar="METRES",
        help="blocked protocols: side of the square blocks assigned whole to a "
        "fold (default 1000 for blocked, 500 for blocked-islahiye, times "
        "sqrt(scale) on a smaller simulated scene: 316 and 158 with --quick)",
    )
    splits.add_argument(
        "--buffer",
        type=float,
        default=0.0,
        metavar="METRES",
        help="blocked protocols: drop training and validation buildings with "
        "a test building of their city within this distance in x and in y "
        "(a square; default 0: none; 40 keeps test centroids out of training "
        "patches, 80 keeps the patches apart)",
    )
    splits.add_argument(
        "--selection",
        choices=("random", "inner-city"),
        default="random",
        help="loco: choose checkpoint and threshold on a random validation "
        "share of the training cities (default, the paper's) or on the "
        "training city with the most damaged buildings (inner-city); run each "
        "into its own --out",
    )
    lightning = parser.add_argument_group(
        "Lightning", "passed to lightning.pytorch.Trainer (default: configuration's)"
    )
    lightning.add_argument("--accelerator", default=None, help="cpu, gpu, auto, ...")
    lightning.add_argument(
        "--devices", default=None, help="number of devices, a list (0,1) or auto"
    )
    lightning.add_argument("--strategy", default=None, help="e.g. ddp, auto")
    lightning.add_argument(
        "--precision",
        default=None,
        help="e.g. 32-true (float32) or bf16-mixed (the configurations'; "
        "float32 where the hardware has no bfloat16)",
    )
    lightning.add_argument(
        "--num-nodes", type=integer_type(1), default=None, help="number of nodes"
    )
    lightning.add_argument(
        "--max-time",
        default=None,
        help="time limit per run, DD:HH:MM:SS (default: none; the configurations' "
        "max_time, meant for a single `torchgeo fit`, is not used); runs it stops "
        "are flagged in the tables",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep each run's checkpoints (deleted once the run is done by default)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    # Internal knobs for tests: cap the batches of each epoch.
    parser.add_argument(
        "--limit-train-batches", type=integer_type(1), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--limit-val-batches", type=integer_type(1), help=argparse.SUPPRESS
    )
    parser.set_defaults(func=_run_protocol)
