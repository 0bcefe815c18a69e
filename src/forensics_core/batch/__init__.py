"""Many files at once: scans into resumable JSONL (threads or Ray), and evaluation against labels."""
