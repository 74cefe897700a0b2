"""What each page shows, computed from core entities: one module per page, ``common`` for what several share.

Plain functions, free of I/O and of Streamlit, so that they are tested on
their own (tests/console/views/) and pages stay a description of the screen.
Figures live in :mod:`byom.core.analysis`, traffic history in
:mod:`byom.core.history`, usage maps in :mod:`byom.core.usage`.
"""
