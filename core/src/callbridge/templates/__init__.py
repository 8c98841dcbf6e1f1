"""Files that ``callbridge new-plugin`` copies (``*.tmpl``, with ``{{name}}`` placeholders)."""
