"""``brainnet contrast``: paired comparisons between regions or between layers (side-swap and relabelling tests)."""

from __future__ import annotations

from brainnet.cli._common import (
    add_command,
    add_compute_args,
    add_output_args,
    add_study_args,
    add_weights_args,
    check_at_least,
    notice_if_embedded_study,
    notice_if_untrained,
    split_list,
)

EXAMPLES = """\
  brainnet contrast decode --mask occipital,whole-brain      the paper's occipital vs whole-brain comparison
  brainnet contrast encode --layers fc7,fc8                  every subject, two layers, one region
  brainnet contrast encode --subjects 01 --layers fc7,fc8    one subject: relabelling test only
  brainnet contrast rsa --layers conv5,fc6,fc7,fc8 --permutations 0    every pair, side-swap test only
"""

# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "contrast": (
        "compare regions (--mask a,b) or layers (--layers a,b) for decode, encode or rsa: side-swap permutation "
        "test over subjects (p), stimulus relabelling test (p_relabel), both corrected across pairs"
    ),
}


def register(subparsers) -> None:
    from brainnet._defaults import COMPARISONS, DECODE_COMPONENTS, RDM_METRICS

    parser = add_command(subparsers, "contrast", COMMANDS["contrast"], EXAMPLES)
    parser.add_argument("analysis", choices=("decode", "encode", "rsa"), help="the analysis whose statistic is compared")
    add_study_args(parser)  # --mask takes a comma-separated list here
    parser.add_argument("--layers", default="fc8", help="comma-separated layers (default fc8)")
    parser.add_argument("--subjects", type=split_list, default=None,
                        help="comma-separated subject labels (default: all); encode with one subject: relabelling "
                        "test only")
    parser.add_argument("--subject", type=split_list, default=None, help="encode: same as --subjects")
    parser.add_argument("--flips", type=int, default=10000,
                        help="side-swap test: random sign flips over subjects (default 10000; all 2^n_subjects "
                        "flips when that is fewer)")
    parser.add_argument("--permutations", type=int, default=1000,
                        help="relabelling test: shared stimulus relabellings, each side refitted (default 1000; "
                        "0 skips it)")
    parser.add_argument("--alternative", choices=("two-sided", "greater", "less"), default="two-sided",
                        help="two-sided (default), or greater / less: the first side above / below the second")
    parser.add_argument("--components", type=int, default=DECODE_COMPONENTS,
                        help=f"decode: PLS components (default {DECODE_COMPONENTS})")
    parser.add_argument("--algorithm", choices=("nipals", "simpls"), default="nipals",
                        help="decode: PLS algorithm (default nipals)")
    parser.add_argument("--model", choices=("ridge", "pls"), default="ridge", help="encode: model (default ridge)")
    parser.add_argument("--cv", type=int, default=5,
                        help="encode, and decode's within-subject side-swap values: folds over stimuli (default 5)")
    parser.add_argument("--rdm", choices=[m for m in RDM_METRICS if m != "crossnobis"], default="correlation",
                        help="rsa: dissimilarity (default correlation)")
    parser.add_argument("--compare", choices=COMPARISONS, default="spearman",
                        help="rsa: RDM comparison (default spearman)")
    add_weights_args(parser)
    add_compute_args(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from brainnet import contrasts

    check_at_least(args, 1, "components", "cv", "flips")
    check_at_least(args, 0, "permutations")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    common = dict(mask=args.mask, layers=args.layers, features=args.features, weights=args.weights,
                  untrained_seed=args.untrained_seed, n_permutations=args.permutations, n_flips=args.flips,
                  alternative=args.alternative, seed=args.seed, n_jobs=args.n_jobs, out=args.out,
                  overwrite=args.overwrite)
    if args.analysis == "decode":
        result = contrasts.contrast_decoding(args.study, subjects=args.subjects, n_components=args.components,
                                             algorithm=args.algorithm, cv=args.cv, **common)
    elif args.analysis == "encode":
        result = contrasts.contrast_encoding(args.study, args.subject or args.subjects or "all", model=args.model,
                                             cv=args.cv, **common)
    else:
        result = contrasts.contrast_rsa(args.study, subjects=args.subjects, rdm=args.rdm, compare=args.compare,
                                        **common)
    s = result.summary
    flips = f"all {s['n_flips'] + 1} sign flips (exact)" if s["exact"] else f"{s['n_flips']} random sign flips"
    print(f"{args.analysis}, side-swap test over {s['n_subjects']} subjects ({flips}): {s['statistic']}")
    for row in result.table.itertuples():
        print(f"{row.pair}: {row.stat_a:.4f} vs {row.stat_b:.4f}, mean difference {row.difference:+.4f} "
              f"(SD {row.sd_difference:.4f}), t = {row.t:+.3f}, p = {row.p:.4g}, p_FWE = {row.p_fwe:.4g}, "
              f"p_Holm = {row.p_holm:.4g}")
    if s["n_permutations"]:
        print(f"relabelling test ({s['n_permutations']} shared relabellings; secondary: tests 'no stimulus "
              f"information on either side'): {s['relabel_statistic']}")
        for row in result.table.itertuples():
            print(f"{row.pair}: {row.relabel_stat_a:.4f} vs {row.relabel_stat_b:.4f}, difference "
                  f"{row.relabel_difference:+.4f} (null {row.relabel_null_mean:+.4f} +/- {row.relabel_null_sd:.4f} "
                  f"SD; effect {row.relabel_effect_vs_null:+.2f} null SDs), p_relabel = {row.p_relabel:.4g}, "
                  f"p_relabel_FWE = {row.p_relabel_fwe:.4g}")
    print(f"results: {result.path}")
    return 0
