"""`python -m pragmatiq.train TOK --name NAME ...`: the `pragmatiq pretrain` command, for torchrun."""

from pragmatiq.cli import pretrain

pretrain(prog_name="python -m pragmatiq.train")
