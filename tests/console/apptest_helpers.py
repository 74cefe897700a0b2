"""Finding what a user sees in an AppTest run."""


def by_label(widgets, label: str):
    """The one widget (button, selectbox, ...) with this label on the page."""
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, f"{len(found)} widgets labelled {label!r}: {[w.label for w in widgets]}"
    return found[0]


def texts(elements) -> str:
    """Every value of a list of elements (errors, markdown, ...) as one string, for 'in' checks."""
    return "\n".join(str(e.value) for e in elements)
