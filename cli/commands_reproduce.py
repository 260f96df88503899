"""`zoo reproduce-paper`: every published number of docs/paper-model.md §5 (and the Fig. 3 volumes,
and Appendix D's rows) beside the estimator's value and the relative error; Appendix D's rows also
beside the estimate of the fit that held their table out (cross-validated)."""

import json

import click

from cli.options import FORMAT


@click.command(name="reproduce-paper")
@click.option("--mode", type=click.Choice(["calibrated", "roofline"]), default="calibrated", show_default=True)
@FORMAT
def reproduce_paper_command(mode: str, output_format: str) -> None:
    """The paper's published numbers beside the estimate, with the median and maximum error,
    in-sample and cross-validated apart."""
    from layouts.cost.paper_reproduction import format_reproduction, reproduce_paper

    reproduction = reproduce_paper(mode)
    if output_format == "json":
        for comparison in reproduction.comparisons:
            click.echo(json.dumps({"quantity": comparison.quantity, "unit": comparison.unit, "published": comparison.published,
                                   "estimate": comparison.estimate, "relative_error": comparison.relative_error,
                                   "held_out_estimate": comparison.held_out, "held_out_error": comparison.held_out_error, "mode": mode}))  # fmt: skip
        return
    click.echo(format_reproduction(reproduction))
