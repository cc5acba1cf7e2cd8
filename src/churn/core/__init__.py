"""Core: params, the data contract, io, stats, integrity and errors. Imports no other layer."""
