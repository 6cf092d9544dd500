"""Reports over many runs: collect run directories, group them, aggregate with honest
uncertainty (``stats``), and compare groups."""
