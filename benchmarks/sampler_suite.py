"""Sampler accuracy suite: polydiff vs diffusers at equal NFE on representative problems (issue 21, item 1).

    .venv/bin/python benchmarks/sampler_suite.py [--quick] [--out DIR] [--no-networks]

Problems (``suite_problems.py``): exact Gaussian-mixture oracles in 2, 16, 64 and 256 dimensions
(8-16 components, stds log-spaced from 0.02 to 0.6, data of about unit RMS per coordinate) on two
discrete schedules, DDPM's linear betas (1e-4 .. 0.02) and Stable Diffusion's scaled-linear ones
(0.00085 .. 0.012), each reproduced exactly by polydiff's ``DiscreteVP`` and given to diffusers
as the same betas; plus the shipped image UNet and audio UNet (prompt-conditioned, no guidance,
as ``end_to_end.py`` drives the image UNet), given to diffusers as trained betas with
v-prediction (timestep k at t = (k + 1) / 1000 * t_max).

Metric: endpoint error = mean over samples of the per-sample RMS over coordinates of
(sample - reference), where the reference is the exact probability-flow ODE endpoint from the
same starting noise (an RK4 solve independent of either framework's samplers, checked against a
solve at half the steps). RMS over coordinates makes the dimensions comparable.

Methods: every deterministic Gaussian sampler registered by polydiff's core x every registered
spacing (both listed at run time), polydiff's defaults (``polydiff.loop.DEFAULT_SAMPLER`` /
``DEFAULT_SPACING`` at run time), a tuned step grid when ``polydiff.tune_steps`` exists (tuned
on calibration seeds disjoint from the evaluation seeds); against every diffusers scheduler of
``accuracy.py``'s table plus UniPC bh1, DPM-Solver++ 2M with the Heun solver type and DEIS,
each at every ``timestep_spacing`` and every sigma option its class takes. Each method gets the
most steps whose counted denoiser calls fit each budget (5, 10, 20 NFE); the best of each
framework is kept per problem and budget. Stochastic samplers are left out (their endpoint is not
the ODE's).
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import shlex
import sys
import time
from pathlib import Path

import polydiff
import polydiff.loop
import suite_problems as sp
import torch
from accuracy import DIFFUSERS as ACCURACY_DIFFUSERS
from accuracy import SIGMAS as ACCURACY_SIGMAS
from common import RESULTS, diffusers_sample, diffusers_scheduler_for, git_commit, load_note, machine
from polydiff.registries import components

BUDGETS = (5, 10, 20)
TIMESTEP_SPACINGS = ("leading", "linspace", "trailing")
SIGMAS = {**ACCURACY_SIGMAS,  # option name -> config; used where the class takes the argument
          "exponential": {"use_exponential_sigmas": True},
          "beta": {"use_beta_sigmas": True}}
CAL_SEED = 1_000_000   # calibration seeds for tuned grids: far from the evaluation seeds 0 .. n-1


def diffusers_table():
    """(label, class, fixed config): accuracy.py's table plus UniPC bh1, DPM++ 2M (heun) and DEIS."""
    table = [(label, cls, dict(fixed)) for label, cls, fixed, _sig, _pair in ACCURACY_DIFFUSERS]
    extra = [
        ("DPMSolverMultistep 2M (heun)", "DPMSolverMultistepScheduler", {"solver_order": 2, "solver_type": "heun"}),
        # bh1 with the default final_sigmas_type="zero" returns NaN (diffusers 0.42: its B(h) is
        # infinite at the last step to sigma 0); "sigma_min" is the setting where it runs
        ("UniPC (bh1, order 2)", "UniPCMultistepScheduler",
         {"solver_order": 2, "solver_type": "bh1", "final_sigmas_type": "sigma_min"}),
        ("UniPC (bh1, order 3)", "UniPCMultistepScheduler",
         {"solver_order": 3, "solver_type": "bh1", "final_sigmas_type": "sigma_min"}),
        ("DEIS (order 2)", "DEISMultistepScheduler", {"solver_order": 2}),
        ("DEIS (order 3)", "DEISMultistepScheduler", {"solver_order": 3}),
    ]
    return table + [e for e in extra if e[0] not in {t[0] for t in table}]


def sigma_options(cls_name: str) -> list[str]:
    """The sigma options the class takes (by its constructor's arguments)."""
    import diffusers

    params = inspect.signature(getattr(diffusers, cls_name).__init__).parameters
    return [name for name, cfg in SIGMAS.items() if all(k in params for k in cfg)]


def polydiff_samplers() -> list[str]:
    reg = components().samplers
    return [name for name, spec in reg.items()
            if getattr(spec, "process", "gaussian") == "gaussian" and not spec.stochastic
            and reg.origin[name].startswith("polydiff")]


class Counting:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0
        for attr in ("schedule", "prediction"):
            if hasattr(fn, attr):
                setattr(self, attr, getattr(fn, attr))

    def __call__(self, *args, **kw):
        self.calls += 1
        return self.fn(*args, **kw)


# -- running one method ---------------------------------------------------------------------------

def fit_steps(budget: int, calls) -> int:
    """``accuracy.steps_for`` (the most steps whose counted calls fit the budget), found in a few
    counts: a first guess from the calls per step, then one step at a time."""
    steps = budget
    c = calls(steps)
    if c > budget:
        steps = max(1, min(steps - 1, int(steps * budget / c)))
    while steps > 1 and calls(steps) > budget:
        steps -= 1
    while steps < budget and calls(steps + 1) <= budget:
        steps += 1
    return steps


def _dummy(x, t, cond=None):
    return torch.zeros_like(x)


def polydiff_calls(schedule, sampler, spacing, cache):
    def calls(steps):
        key = ("p", id(schedule), sampler, tuple(spacing) if isinstance(spacing, list) else spacing, steps)
        if key not in cache:
            model = Counting(_dummy)
            polydiff.sample(model, (1, 2), sampler=sampler, steps=steps, spacing=spacing, schedule=schedule,
                            dtype=torch.float64)
            cache[key] = model.calls
        return cache[key]
    return calls


def diffusers_calls(problem, cls, config, cache):
    def calls(steps):
        key = ("d", problem.name, cls, json.dumps(config, sort_keys=True), steps)
        if key not in cache:
            sched = diffusers_scheduler_for(cls, **problem.diffusers_config, **config)
            model = Counting(lambda x, t, i: torch.zeros_like(x))
            diffusers_sample(sched, steps, torch.zeros(1, 2, dtype=torch.float64), model)
            cache[key] = model.calls
        return cache[key]
    return calls


def run_polydiff(problem, sampler, spacing, steps, n=None, seed=0):
    n = problem.n if n is None else n
    model = Counting(problem.denoiser)
    x = polydiff.sample(model, (n, *problem.shape), sampler=sampler, steps=steps, spacing=spacing,
                        schedule=problem.schedule, cond=problem.cond, seed=seed, dtype=problem.dtype)
    return x, model.calls


def run_diffusers(problem, cls, config, steps):
    sched = diffusers_scheduler_for(cls, **problem.diffusers_config, **config)
    model = Counting(problem.diffusers_model(sched))
    with torch.inference_mode():
        x = diffusers_sample(sched, steps, problem.x_t(), model)
    return x, model.calls


def diffusers_key(problem, cls, config, steps):
    """What the run depends on: the class, its solver options and the levels it visits (two
    settings that give the same timesteps and sigmas give the same result)."""
    sched = diffusers_scheduler_for(cls, **problem.diffusers_config, **config)
    sched.set_timesteps(steps)
    sig = getattr(sched, "sigmas", None)
    solver = {k: v for k, v in config.items() if k not in ("timestep_spacing",) and not k.startswith("use_")}
    return (cls, json.dumps(solver, sort_keys=True), tuple(sched.timesteps.tolist()),
            None if sig is None else tuple(round(float(s), 12) for s in sig))


def _msg(exc) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}" + (f": {lines[0][:160]}" if lines else "")


def _err(ref, fn, *args):
    try:
        x, nfe = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a method that fails on a problem is reported, not fatal
        return math.inf, None, _msg(exc)
    err = sp.endpoint_error(x, ref)
    return (err if math.isfinite(err) else math.inf), nfe, None


# -- one problem ----------------------------------------------------------------------------------

def tune_grid(problem, nfe, sampler, n_cal, reference_steps, rounds=None):
    """A tuned time list from ``polydiff.tune_steps`` on calibration seeds, or None when it is missing."""
    tune = getattr(polydiff, "tune_steps", None)
    if tune is None:
        return None
    params = dict(inspect.signature(tune).parameters)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):  # tune_steps(..., **options) -> search(...)
        search = getattr(getattr(polydiff, "step_grids", None), "search", None)
        params.update(inspect.signature(search).parameters if search else {})
    kw = dict(sampler=sampler, schedule=problem.schedule, cond=_slice_cond(problem.cond, n_cal), seed=CAL_SEED,
              reference_steps=reference_steps, calibration=n_cal, rounds=rounds)
    if rounds is None:
        del kw["rounds"]
    kw = {k: v for k, v in kw.items() if k in params}
    return list(tune(problem.denoiser, (n_cal, *problem.shape), nfe, **kw))


def stored_grid(problem, sampler, steps):
    """The grid shipped beside the model's checkpoint for this sampler and step count, if any
    (``LoadedModel.step_grids``; ``polydiff generate`` uses it when no spacing is named)."""
    grids = problem.extra.get("step_grids")
    if not grids:
        return None
    try:
        from polydiff.step_grids import grid_for
    except ImportError:
        return None
    return grid_for(grids, sampler, steps, problem.schedule.name)


def _slice_cond(cond, n):
    if cond is None:
        return None
    if isinstance(cond, dict):
        return {k: _slice_cond(v, n) for k, v in cond.items()}
    if torch.is_tensor(cond):
        return cond[:n]
    return cond[:n]


def run_problem(problem, args, budgets, cache):
    ref = problem.ref
    rows = []
    t0 = time.time()
    quick = args.quick
    spacings = list(components().spacings)
    if quick:
        spacings = [s for s in spacings if s in ("trailing", "logsnr", "leading", polydiff.loop.DEFAULT_SPACING)]
    done = {}

    def add(framework, method, setting, budget, steps, err, nfe, error=None, **extra):
        rows.append(dict(problem=problem.name, kind=problem.kind, framework=framework, method=method,
                         setting=setting, budget=budget, steps=steps, nfe=nfe, err=err, error=error, **extra))

    # polydiff: every sampler x every spacing
    for sampler in polydiff_samplers():
        for spacing in spacings:
            for budget in budgets:
                try:
                    steps = fit_steps(budget, polydiff_calls(problem.schedule, sampler, spacing, cache))
                    times = tuple(components().spacings[spacing](problem.schedule, steps))
                except Exception as exc:  # noqa: BLE001
                    add("polydiff", sampler, spacing, budget, None, math.inf, None, _msg(exc))
                    continue
                key = ("p", sampler, times)
                if key not in done:
                    done[key] = _err(ref, run_polydiff, problem, sampler, spacing, steps)
                err, nfe, error = done[key]
                add("polydiff", sampler, spacing, budget, steps, err, nfe, error)
        best = [min(r["err"] for r in rows if r["method"] == sampler and r["budget"] == b) for b in budgets]
        print(f"    polydiff {sampler:10s} best " + " ".join(f"{e:.2e}" for e in best)
              + f"  [{time.time() - t0:.0f} s]", flush=True)

    # polydiff's defaults, as a user gets them
    d_sampler, d_spacing = polydiff.loop.DEFAULT_SAMPLER, polydiff.loop.DEFAULT_SPACING
    for budget in budgets:
        steps = fit_steps(budget, polydiff_calls(problem.schedule, None, None, cache))
        stored = stored_grid(problem, d_sampler, steps)  # what `polydiff generate` would use for the model
        err, nfe, error = _err(ref, run_polydiff, problem, None, stored, steps)
        add("polydiff-default", d_sampler, d_spacing if stored is None else "stored tuned grid", budget, steps,
            err, nfe, error)
    print("    polydiff default " + " ".join(f"{r['err']:.2e}" for r in rows if r["framework"] == "polydiff-default")
          + f"  ({d_sampler} + {d_spacing})", flush=True)

    # polydiff with a tuned grid (calibration seeds disjoint from the evaluation seeds)
    if getattr(polydiff, "tune_steps", None) is not None and not args.no_tuned:
        for budget in budgets:
            t1 = time.time()
            try:
                if problem.kind == "network":  # each calibration solve costs network calls: a smaller search
                    times = tune_grid(problem, budget, None, min(problem.n, args.n_cal_network),
                                      args.tune_reference_steps // 2, rounds=args.tune_rounds_network)
                else:
                    times = tune_grid(problem, budget, None, min(problem.n, args.n_cal), args.tune_reference_steps)
                err, nfe, error = _err(ref, run_polydiff, problem, None, times, len(times) - 1)
            except Exception as exc:  # noqa: BLE001 - the hook is new; a failure is reported, not fatal
                times, err, nfe, error = None, math.inf, None, _msg(exc)
            add("polydiff-tuned", d_sampler, "tuned", budget, None if times is None else len(times) - 1, err, nfe,
                error, times=times, tune_s=round(time.time() - t1, 1))
        print("    polydiff tuned   " + " ".join(f"{r['err']:.2e}" for r in rows if r["framework"] == "polydiff-tuned")
              + "  " + "; ".join(r["error"] for r in rows if r["framework"] == "polydiff-tuned" and r["error"]),
              flush=True)

    # diffusers: every scheduler x timestep_spacing x sigma option
    for label, cls, fixed in diffusers_table():
        sig_opts = sigma_options(cls)
        if problem.kind == "network" and not args.all_network_settings:
            sig_opts = [s for s in sig_opts if s in ACCURACY_SIGMAS]
        if quick:
            sig_opts = [s for s in sig_opts if s in ("default sigmas", "karras")]
        for ts in TIMESTEP_SPACINGS if not quick else ("leading", "trailing"):
            for sig in sig_opts:
                config = dict(timestep_spacing=ts, **fixed, **SIGMAS[sig])
                setting = f"{ts}, {sig}"
                for budget in budgets:
                    try:
                        steps = fit_steps(budget, diffusers_calls(problem, cls, config, cache))
                        key = diffusers_key(problem, cls, config, steps)
                    except Exception as exc:  # noqa: BLE001 - e.g. an option the class refuses
                        add("diffusers", label, setting, budget, None, math.inf, None,
                            _msg(exc))
                        continue
                    if key not in done:
                        done[key] = _err(ref, run_diffusers, problem, cls, config, steps)
                    err, nfe, error = done[key]
                    add("diffusers", label, setting, budget, steps, err, nfe, error)
        best = [min(r["err"] for r in rows if r["method"] == label and r["budget"] == b) for b in budgets]
        print(f"    diffusers {label:30s} best " + " ".join(f"{e:.2e}" for e in best)
              + f"  [{time.time() - t0:.0f} s]", flush=True)
    return rows


# -- summaries --------------------------------------------------------------------------------------

def best(rows, framework, budget):
    cand = [r for r in rows if r["framework"] == framework and r["budget"] == budget and r["nfe"] is not None
            and r["nfe"] <= budget]
    return min(cand, key=lambda r: r["err"]) if cand else None


def summarise(problem_name, rows, budgets):
    out = []
    for b in budgets:
        pb, db = best(rows, "polydiff", b), best(rows, "diffusers", b)
        de = [r for r in rows if r["framework"] == "polydiff-default" and r["budget"] == b]
        tu = [r for r in rows if r["framework"] == "polydiff-tuned" and r["budget"] == b]
        s = dict(problem=problem_name, budget=b, polydiff_best=pb, diffusers_best=db,
                 default=de[0] if de else None, tuned=tu[0] if tu else None)
        for k in ("polydiff_best", "default", "tuned"):
            c = s[k]
            s[f"ratio_{k}"] = (c["err"] / db["err"]) if c and db and db["err"] > 0 else None
        s["ratio_default_to_polydiff_best"] = (s["default"]["err"] / pb["err"]) if s["default"] and pb else None
        out.append(s)
    return out


def _cell(r):
    if r is None:
        return "-"
    if not math.isfinite(r["err"]):
        return "failed"
    return f"{r['err']:.2e} ({r['nfe']})"


def _r(x):
    if x is None or not math.isfinite(x):
        return "-"
    return f"**{x:.2f}**" if x > 1 else f"{x:.2f}"


def problem_table(summary, has_tuned):
    head = ("| NFE | polydiff best | sampler / spacing | diffusers best | scheduler / setting | ratio "
            "| polydiff default | ratio |" + (" polydiff tuned | ratio |" if has_tuned else ""))
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for s in summary:
        pb, db, de, tu = s["polydiff_best"], s["diffusers_best"], s["default"], s["tuned"]
        line = (f"| {s['budget']} | {_cell(pb)} | {pb['method']} / {pb['setting'] if pb else '-'} | {_cell(db)} | "
                f"{db['method']} / {db['setting']} | {_r(s['ratio_polydiff_best'])} | {_cell(de)} | "
                f"{_r(s['ratio_default'])} |")
        if has_tuned:
            line += f" {_cell(tu)} | {_r(s['ratio_tuned'])} |"
        lines.append(line)
    return "\n".join(lines)


def method_table(rows, budgets):
    """Each method's best setting per budget (a collapsible detail table)."""
    lines = ["| framework | method | " + " | ".join(f"@{b}: error (NFE), setting" for b in budgets) + " |",
             "|---|---|" + "---|" * len(budgets)]
    seen = []
    for r in rows:
        if (r["framework"], r["method"]) not in seen:
            seen.append((r["framework"], r["method"]))
    for fw, m in seen:
        cells = []
        for b in budgets:
            cand = [r for r in rows if r["framework"] == fw and r["method"] == m and r["budget"] == b]
            c = min(cand, key=lambda r: r["err"])
            cells.append(f"{_cell(c)}, {c['setting']}" + (f" ({c['error'][:60]})" if c["error"] and
                                                          not math.isfinite(c["err"]) else ""))
        lines.append(f"| {fw} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def combo_table(all_rows, problems, budgets, top=8):
    """Which (sampler, spacing) holds up across problems: geometric mean over problems of its error
    divided by polydiff's best, per budget (1.00 = the best on every problem)."""
    lines = []
    for b in budgets:
        bests = {p: best([r for r in all_rows if r["problem"] == p], "polydiff", b) for p in problems}
        scores = {}
        for r in all_rows:
            if r["framework"] != "polydiff" or r["budget"] != b or bests.get(r["problem"]) is None:
                continue
            ratio = r["err"] / bests[r["problem"]]["err"] if math.isfinite(r["err"]) else 1e3
            scores.setdefault((r["method"], r["setting"]), {})[r["problem"]] = ratio
        ranked = sorted(((math.exp(sum(math.log(v) for v in d.values()) / len(d)), max(d.values()), k)
                         for k, d in scores.items() if len(d) == len(problems)))
        lines.append(f"| {b} | " + "; ".join(f"{k[0]} + {k[1]} {g:.2f} (worst {w:.2f})" for g, w, k in ranked[:top])
                     + " |")
    return ("| NFE | best (sampler + spacing) by geometric-mean error / polydiff's best over all problems "
            "(worst problem) |\n|---|---|\n" + "\n".join(lines))


def summary_table(summaries, has_tuned):
    head = ("| problem | NFE | polydiff best / diffusers best | default / diffusers best | default / polydiff best |"
            + (" tuned / diffusers best |" if has_tuned else "") + " diffusers best |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for s in summaries:
        db = s["diffusers_best"]
        lines.append(f"| {s['problem']} | {s['budget']} | {_r(s['ratio_polydiff_best'])} | {_r(s['ratio_default'])} | "
                     f"{_r(s['ratio_default_to_polydiff_best'])} |"
                     + (f" {_r(s['ratio_tuned'])} |" if has_tuned else "")
                     + f" {db['method']} ({db['setting']}) |")
    return "\n".join(lines)


def losses(summaries):
    out = []
    for key, who in (("ratio_polydiff_best", "polydiff's best"), ("ratio_default", "polydiff's default"),
                     ("ratio_tuned", "polydiff tuned")):
        bad = [s for s in summaries if s[key] is not None and s[key] > 1]
        failed = [s for s in bad if not math.isfinite(s[key])]
        bad = [s for s in bad if math.isfinite(s[key])]
        if any(s[key] is not None for s in summaries):
            out.append(f"- {who} loses to diffusers' best in {len(bad)} of "
                       f"{sum(s[key] is not None for s in summaries)} (problem, budget) cells"
                       + (": " + "; ".join(f"{s['problem']} @{s['budget']} ({s[key]:.2f}x)" for s in bad)
                          if bad else "") + (f"; failed in {len(failed)}: " + ", ".join(
                              f"{s['problem']} @{s['budget']}" for s in failed) if failed else "") + ".")
    return "\n".join(out)


def plot(summaries, problems, budgets, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return None
    cols = min(5, len(problems))
    rows_n = math.ceil(len(problems) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.9 * rows_n), dpi=100, squeeze=False)
    for ax, name in zip(axes.flat, problems):
        ss = [s for s in summaries if s["problem"] == name]
        for key, style, label in (("polydiff_best", "-o", "polydiff best"), ("default", "-s", "polydiff default"),
                                  ("tuned", "-^", "polydiff tuned"), ("diffusers_best", "--D", "diffusers best")):
            pts = [(s[key]["nfe"], s[key]["err"]) for s in ss if s[key] and s[key]["nfe"]
                   and math.isfinite(s[key]["err"])]
            if pts:
                ax.plot(*zip(*pts), style, label=label, lw=1.5, ms=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_title(name, fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(problems):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("endpoint RMS error")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("endpoint error vs NFE (same x_T, exact ODE reference); best setting per framework", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# -- main -----------------------------------------------------------------------------------------

def build_problems(args):
    if args.quick:
        specs = [(16, "ddpm-linear"), (64, "sd-scaled-linear")]
    else:
        specs = [(d, s) for s in sp.SCHEDULES for d in sp.DIMS]
    for dim, sch in specs:
        n = args.n or (64 if args.quick else {2: 1000, 16: 500, 64: 256, 256: 128}[dim])
        yield lambda dim=dim, sch=sch, n=n: sp.oracle_problem(dim, sch, n, 60 if args.quick else args.ref_steps)
    if not args.no_networks:
        net_ref = 30 if args.quick else args.net_ref_steps
        yield lambda: sp.image_problem(1 if args.quick else args.image_batch, net_ref)
        if not args.quick:
            yield lambda: sp.audio_problem(args.audio_batch, net_ref)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small oracles and a 1-image network check")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--n", type=int, default=0, help="samples per oracle problem (default: by dimension)")
    parser.add_argument("--ref-steps", type=int, default=200, help="RK4 steps of the oracle references")
    parser.add_argument("--image-batch", type=int, default=4, help="batch of the image network problem")
    parser.add_argument("--audio-batch", type=int, default=8, help="batch of the audio network problem")
    parser.add_argument("--net-ref-steps", type=int, default=120,
                        help="RK4 steps of the network references (x4 NFE; the image ODE converges slowly)")
    parser.add_argument("--no-networks", action="store_true")
    parser.add_argument("--all-network-settings", action="store_true",
                        help="networks too get diffusers' exponential and beta sigmas (slow)")
    parser.add_argument("--no-tuned", action="store_true", help="skip the polydiff.tune_steps column")
    parser.add_argument("--n-cal", type=int, default=64, help="calibration batch of tuned grids (oracles)")
    parser.add_argument("--n-cal-network", type=int, default=4, help="calibration batch of tuned grids (networks)")
    parser.add_argument("--tune-reference-steps", type=int, default=200, help="(networks: half)")
    parser.add_argument("--tune-rounds-network", type=int, default=2, help="search rounds of tuned grids (networks)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    budgets = BUDGETS[:2] if args.quick else BUDGETS
    command = "benchmarks/sampler_suite.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    start, load = time.time(), load_note()
    cache, all_rows, summaries, problems, notes, skipped = {}, [], [], [], {}, []
    for make in build_problems(args):
        t0 = time.time()
        problem = make()
        if isinstance(problem, str):
            skipped.append(problem)
            print(f"  skipped: {problem}")
            continue
        print(f"{problem.name} (n={problem.n}; {problem.description}); reference: {problem.ref_note} "
              f"[{time.time() - t0:.0f} s]", flush=True)
        rows = run_problem(problem, args, budgets, cache)
        all_rows += rows
        problems.append(problem.name)
        summaries += summarise(problem.name, rows, budgets)
        notes[problem.name] = dict(n=problem.n, description=problem.description, reference=problem.ref_note,
                                   ref_check=problem.ref_check, kind=problem.kind, seconds=round(time.time() - t0, 1))
        for s in summaries[-len(budgets):]:
            print(f"  @{s['budget']}: polydiff best {_cell(s['polydiff_best'])} "
                  f"{s['polydiff_best']['method']}/{s['polydiff_best']['setting']} | diffusers best "
                  f"{_cell(s['diffusers_best'])} {s['diffusers_best']['method']}/{s['diffusers_best']['setting']} "
                  f"| ratio {_r(s['ratio_polydiff_best'])}, default {_r(s['ratio_default'])}", flush=True)
        print(f"  [{time.time() - t0:.0f} s for this problem, {time.time() - start:.0f} s so far]", flush=True)

    has_tuned = any(s["tuned"] for s in summaries)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = plot(summaries, problems, budgets, out / "sampler_suite.png")
    elapsed = time.time() - start
    tuned_note = ("`polydiff.tune_steps` present: the tuned column uses a grid tuned per problem and budget for the "
                  f"default sampler on a calibration batch of other seeds (from {CAL_SEED}; the evaluation uses seeds "
                  f"0 .. n-1): oracles {args.n_cal} samples, reference_steps={args.tune_reference_steps}, the "
                  f"search's default rounds; networks {args.n_cal_network} samples, reference_steps="
                  f"{args.tune_reference_steps // 2}, rounds={args.tune_rounds_network} (each trial costs network "
                  "calls). Tuning time is not counted in NFE (it is paid once per model and budget)."
                  if has_tuned else "`polydiff.tune_steps` is not there (or --no-tuned): no tuned column.")
    header = [
        "# Sampler accuracy suite: polydiff vs diffusers at equal NFE\n",
        "Endpoint error: mean over samples of the per-sample RMS over coordinates (pixels, mel bins) of the "
        "difference to the exact probability-flow ODE endpoint from the same starting noise (float64 for the "
        "oracles, float32 for the networks). References: RK4 in log(sigma/alpha), independent of both "
        "frameworks' samplers, checked against half the steps (difference in each problem's caption). "
        "NFE: denoiser calls, counted; every method gets the most steps that fit the budget.",
        f"polydiff: every deterministic core sampler ({', '.join(polydiff_samplers())}) x every registered spacing "
        f"({', '.join(components().spacings)}); the default is `{polydiff.loop.DEFAULT_SAMPLER}` + "
        f"`{polydiff.loop.DEFAULT_SPACING}` (read at run time). Stochastic samplers are not run (their endpoint "
        "is not the ODE's). " + tuned_note,
        "diffusers: " + "; ".join(f"{label} ({', '.join(sigma_options(cls))})" for label, cls, _ in diffusers_table())
        + f", each at timestep_spacing {', '.join(TIMESTEP_SPACINGS)}"
        + ("" if args.all_network_settings else " (network problems: default / karras / lu_lambdas sigmas only)")
        + "; DDIM with clip_sample=False. Same betas as polydiff's schedule (oracles: beta_schedule linear or "
        "scaled_linear; networks: trained_betas with v_prediction, as end_to_end.py).",
        "Ratios are polydiff / diffusers' best: below 1 polydiff is more accurate; above 1 (bold) it loses.\n",
        f"Produced by `{command}` in {elapsed:.0f} s on {machine()}; 1 thread; {load}; commit {git_commit()}."
        + (" **--quick run**" if args.quick else "") + "\n",
    ]
    if skipped:
        header.append("Skipped: " + "; ".join(skipped) + ".\n")
    body = ["## Summary: ratios to diffusers' best, per problem and budget\n", summary_table(summaries, has_tuned), "",
            "### Where polydiff loses\n", losses(summaries), "",
            "### Which polydiff setting holds up across problems\n", combo_table(all_rows, problems, budgets), ""]
    if png:
        body += ["![sampler suite](sampler_suite.png)\n"]
    for name in problems:
        nt = notes[name]
        body += [f"## {name}\n",
                 f"{nt['description']}; {nt['n']} samples; reference {nt['reference']}; {nt['seconds']:.0f} s.\n",
                 problem_table([s for s in summaries if s["problem"] == name], has_tuned), "",
                 "<details><summary>every method's best setting</summary>\n",
                 method_table([r for r in all_rows if r["problem"] == name], budgets), "\n</details>\n"]
    text = "\n".join(header + body) + "\n"
    (out / "sampler_suite.md").write_text(text)

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    (out / "sampler_suite.json").write_text(json.dumps(clean(dict(
        command=command, commit=git_commit(), machine=machine(), seconds=round(elapsed, 1), budgets=budgets,
        default=[polydiff.loop.DEFAULT_SAMPLER, polydiff.loop.DEFAULT_SPACING], problems=notes, skipped=skipped,
        summary=summaries, rows=all_rows)), indent=1))
    print("\n".join(body[:9]))
    print(f"\nsaved {out / 'sampler_suite.md'} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
