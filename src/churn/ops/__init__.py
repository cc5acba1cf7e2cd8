"""Operations on the pipeline's outputs: report, release, monitor, remote, summary."""
