"""mkdocs-gen-files script: the CLI and scenario-file reference pages, generated at build time."""

import mkdocs_gen_files

from cosim_cli.reference import cli_reference, scenario_reference

with mkdocs_gen_files.open("cli.md", "w") as page:
    page.write(cli_reference())
mkdocs_gen_files.set_edit_path("cli.md", "../cosim_cli/main.py")

with mkdocs_gen_files.open("scenario-reference.md", "w") as page:
    page.write(scenario_reference())
mkdocs_gen_files.set_edit_path("scenario-reference.md", "../cosim_cli/reference.py")
