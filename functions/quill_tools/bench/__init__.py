"""``quill bench``: benchmarks anyone can rerun; they report medians, spreads and ratios."""
