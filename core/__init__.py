"""byom's core library: the Workspace contract and its backends. No Streamlit here."""

__version__ = "0.1.0"
