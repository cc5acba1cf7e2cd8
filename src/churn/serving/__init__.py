"""The HTTP prediction service. Imports only the core."""
