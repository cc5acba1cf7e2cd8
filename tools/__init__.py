"""Development tools: the example PR comment and throw-away repo copies (not shipped)."""
