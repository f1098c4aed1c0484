"""``qoslab sim SCENARIO [--param value …] -w FILE [-o PNG]``: run a preset, save its RUN.

Every keyword parameter of the preset function (:data:`qoslab.sim.scenarios.SCENARIOS`)
becomes an option; its type is taken from the default value (``--perturb 20``,
``--profile 5.18+``, ``--switch-at none``). ``-o`` draws ``qoslab.plots.latency`` with the
hash changes and the detected spikes.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence

from ..errors import ConfigError
from ..outputs import check_output
from .scenarios import SCENARIOS

__all__ = ["register", "scenario_params", "parse_params"]


def scenario_params(name: str) -> dict[str, inspect.Parameter]:
    """Keyword parameters of a preset, by name."""
    if name not in SCENARIOS:
        raise ConfigError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    sig = inspect.signature(SCENARIOS[name])
    return dict(sig.parameters)


def _convert(text: str, default, name: str):
    if text.lower() == "none":
        return None
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text, 0)
        if isinstance(default, float) or default is None:
            try:
                return int(text, 0) if default is None and text.isdigit() else float(text)
            except ValueError:
                if default is None:
                    return text
                raise
        if isinstance(default, tuple):
            return tuple(int(x, 0) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')}: {text!r} is not a valid "
                          f"{type(default).__name__}") from None
    return text


def parse_params(name: str, items: Sequence[str]) -> dict:
    """Turn ``["--perturb", "20", "--seed", "2"]`` into keyword arguments of the preset.

    >>> parse_params("sfq_perturb", ["--perturb", "20", "--profile", "5.18+"])
    {'perturb': 20, 'profile': '5.18+'}
    """
    params = scenario_params(name)
    out: dict = {}
    it = iter(items)
    for item in it:
        if not item.startswith("--"):
            raise ConfigError(f"expected --PARAM VALUE, got {item!r}")
        key, _, value = item[2:].partition("=")
        key = key.replace("-", "_")
        if key not in params:
            raise ConfigError(f"scenario {name}: no parameter {key!r}; it takes "
                              f"{', '.join(params)}")
        if not value:
            value = next(it, None)
            if value is None:
                raise ConfigError(f"--{key.replace('_', '-')}: a value is needed")
        default = params[key].default
        out[key] = _convert(value, default if default is not inspect.Parameter.empty else 0.0,
                            key)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qoslab sim`` to the command line."""
    lines = []
    for name, fn in SCENARIOS.items():
        doc = (inspect.getdoc(fn) or "").splitlines()[0]
        args = ", ".join(f"--{k.replace('_', '-')} {p.default!r}"
                         for k, p in inspect.signature(fn).parameters.items())
        lines.append(f"  {name}: {doc}\n      {args}")
    p = sub.add_parser(
        "sim", help="run a simulated experiment (a named preset) and save its RUN",
        description="Run a preset of qoslab.sim.scenarios and write the RUN file.",
        epilog="scenarios:\n" + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=list(SCENARIOS), metavar="SCENARIO")
    p.add_argument("-w", "--write", required=True, metavar="FILE",
                   help="RUN file to write (.json.gz)")
    p.add_argument("-o", "--output", metavar="PNG", help="also draw the latency plot here")
    p.add_argument("--force", action="store_true", help="replace existing -w/-o files")
    seen: dict[str, str] = {}
    for fn in SCENARIOS.values():
        for key in inspect.signature(fn).parameters:
            seen.setdefault(key, key.replace("_", "-"))
    group = p.add_argument_group("scenario parameters (see the list below)")
    for key, flag in seen.items():
        group.add_argument(f"--{flag}", dest=f"param_{key}", default=argparse.SUPPRESS,
                           metavar="VALUE")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    items = []
    for dest, value in sorted(vars(args).items()):
        if dest.startswith("param_"):
            items += [f"--{dest[6:]}", value]
    kwargs = parse_params(args.scenario, items)
    check_output(args.write, force=args.force, what="RUN file")
    if args.output:
        check_output(args.output, force=args.force, what="figure")
    run = SCENARIOS[args.scenario](**kwargs)
    path = run.save(args.write, force=args.force)
    print(f"{path}: {run!r}")
    if args.output:
        from ..analysis import detect_spikes
        from ..plots import latency, save_figure

        fig = latency(run, events=True, spikes=detect_spikes(run.probes))
        save_figure(fig, args.output, force=args.force)
        print(args.output)
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="qoslab")
    register(parser.add_subparsers())
    ns = parser.parse_args()
    sys.exit(ns.func(ns))
