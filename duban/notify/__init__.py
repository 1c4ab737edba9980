"""Rendering and delivering notifications: Jinja2 templates, SMTP through yagmail, .eml files."""
