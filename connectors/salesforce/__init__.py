"""Salesforce (REST + SOQL) connector: ``accounts``, ``opportunities``, ``contacts`` from ``describe``."""
