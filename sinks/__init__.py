"""Where results go: structured logs, the console, transcript files."""
