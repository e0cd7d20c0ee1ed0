"""`python -m attune_client` is the `attune` command."""

from attune_client.cli import main

main()
