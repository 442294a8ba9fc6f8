"""`slick-hf <command>`: one small module per command, one argument convention (`slick_hf.cli.parsing`)."""
