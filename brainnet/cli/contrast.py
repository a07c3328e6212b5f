"""``brainnet contrast``: paired permutation comparisons between regions or between layers."""

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
  brainnet contrast encode --subject 01 --layers fc7,fc8     one subject, two layers, one region
  brainnet contrast rsa --layers conv5,fc6,fc7,fc8 --permutations 5000    every pair, p_FWE across pairs
"""

# command -> one-line help: `brainnet --help` lists these without importing the command.
COMMANDS = {
    "contrast": (
        "compare regions (--mask a,b) or layers (--layers a,b) for decode, encode or rsa: paired permutation "
        "test, one stimulus relabelling shared by both sides, corrected across pairs"
    ),
}


def register(subparsers) -> None:
    from brainnet._defaults import COMPARISONS, DECODE_COMPONENTS, RDM_METRICS

    parser = add_command(subparsers, "contrast", COMMANDS["contrast"], EXAMPLES)
    parser.add_argument("analysis", choices=("decode", "encode", "rsa"), help="the analysis whose statistic is compared")
    add_study_args(parser)  # --mask takes a comma-separated list here
    parser.add_argument("--layers", default="fc8", help="comma-separated layers (default fc8)")
    parser.add_argument("--subject", default="01", help="encode: the subject (default 01)")
    parser.add_argument("--subjects", type=split_list, default=None,
                        help="decode, rsa: comma-separated subject labels (default: all)")
    parser.add_argument("--permutations", type=int, default=1000,
                        help="shared stimulus relabellings (default 1000)")
    parser.add_argument("--alternative", choices=("two-sided", "greater", "less"), default="two-sided",
                        help="two-sided (default), or greater / less: the first side above / below the second")
    parser.add_argument("--components", type=int, default=DECODE_COMPONENTS,
                        help=f"decode: PLS components (default {DECODE_COMPONENTS})")
    parser.add_argument("--algorithm", choices=("nipals", "simpls"), default="nipals",
                        help="decode: PLS algorithm (default nipals)")
    parser.add_argument("--model", choices=("ridge", "pls"), default="ridge", help="encode: model (default ridge)")
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

    check_at_least(args, 1, "permutations", "components")
    notice_if_untrained(args)
    notice_if_embedded_study(args)
    common = dict(mask=args.mask, layers=args.layers, features=args.features, weights=args.weights,
                  untrained_seed=args.untrained_seed, n_permutations=args.permutations,
                  alternative=args.alternative, seed=args.seed, n_jobs=args.n_jobs, out=args.out,
                  overwrite=args.overwrite)
    if args.analysis == "decode":
        result = contrasts.contrast_decoding(args.study, subjects=args.subjects, n_components=args.components,
                                             algorithm=args.algorithm, **common)
    elif args.analysis == "encode":
        result = contrasts.contrast_encoding(args.study, args.subject, model=args.model, **common)
    else:
        result = contrasts.contrast_rsa(args.study, subjects=args.subjects, rdm=args.rdm, compare=args.compare,
                                        **common)
    print(f"{args.analysis}: {result.summary['statistic']}; {result.summary['n_permutations']} shared permutations")
    for row in result.table.itertuples():
        print(f"{row.pair}: {row.stat_a:.4f} vs {row.stat_b:.4f}, difference {row.difference:+.4f} "
              f"(null {row.null_mean:+.4f} +/- {row.null_sd:.4f} SD; effect {row.effect_vs_null:+.2f} null SDs), "
              f"p = {row.p:.4g}, p_FWE = {row.p_fwe:.4g}, p_Holm = {row.p_holm:.4g}")
    print(f"results: {result.path}")
    return 0
