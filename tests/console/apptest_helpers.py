"""Finding what a user sees in an AppTest run, and the forms several pages' tests fill in."""

from byom.console import keys


def by_label(widgets, label: str):
    """The one widget (button, selectbox, ...) with this label on the page."""
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, f"{len(found)} widgets labelled {label!r}: {[w.label for w in widgets]}"
    return found[0]


def texts(elements) -> str:
    """Every value of a list of elements (errors, markdown, ...) as one string, for 'in' checks."""
    return "\n".join(str(e.value) for e in elements)


def register(at, name: str, path: str, tags: str = ""):
    """Fill in and send the Models page's register form for a path."""
    at.radio(key=keys.REGISTER_SOURCE).set_value("A folder or file on this machine").run()
    at.text_input(key=keys.REGISTER_NAME).set_value(name)
    at.text_input(key=keys.REGISTER_PATH).set_value(path)
    at.text_area(key=keys.REGISTER_TAGS).set_value(tags)
    by_label(at.button, "Register").click()
    return at.run()
