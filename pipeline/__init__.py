"""seci: knowledge-creation analytics (Nonaka's SECI model) over an organization's communications."""

__version__ = "0.1.0"
