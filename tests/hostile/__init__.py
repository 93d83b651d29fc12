"""A hostile upstream for the connectors: GitHub- and Jira-shaped answers that lie, loop, redirect, flood."""
