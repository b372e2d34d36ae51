"""Reusable Rx operators, each a function returning `Callable[[Observable], Observable]`."""
