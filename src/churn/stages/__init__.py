"""Pipeline stages, one module per stage in dvc.yaml. Import only the core."""
