"""`python -m orchestra.cli.dashboard [--kubeconfig K]`: the dashboard without the main CLI group."""

from orchestra.cli.dashboard.command import dashboard_command

dashboard_command.main(prog_name="orchestra dashboard")
