"""The endpoint picker: one widget on every page, the endpoint chosen on one page is the next page's."""

import pytest
from byom.console import keys
from byom.core.entities import Endpoint

from .apptest_helpers import texts

PAGES = ["endpoints", "playground", "token_ranks", "monitoring"]


@pytest.fixture
def two_endpoints(demo):
    demo.create_or_update_endpoint(Endpoint(name="second"))
    return demo


def test_the_endpoint_chosen_on_one_page_is_the_next_page_s(open_page, two_endpoints):
    at = open_page("endpoints")
    picker = at.selectbox(key=keys.ENDPOINT_PICKER)
    assert (picker.label, picker.options, picker.value) == ("Endpoint", ["demo", "second"], "demo")
    picker.set_value("second").run()
    assert not at.exception
    assert at.selectbox(key=keys.ENDPOINT_PICKER).value == "second"
    assert "Deploy a model first" in texts(at.info)
    for page in PAGES[1:]:
        at.switch_page(f"screens/{page}.py").run()
        assert not at.exception, page
        assert at.selectbox(key=keys.ENDPOINT_PICKER).value == "second", page
    at.selectbox(key=keys.ENDPOINT_PICKER).set_value("demo").run()
    at.switch_page("screens/endpoints.py").run()
    assert at.selectbox(key=keys.ENDPOINT_PICKER).value == "demo"


def test_the_picker_follows_an_endpoint_just_created_and_one_just_deleted(open_page, two_endpoints):
    at = open_page("endpoints")
    at.text_input(key=keys.ENDPOINT_CREATE_NAME).set_value("third")
    at.button(key=keys.ENDPOINT_CREATE_SUBMIT).click()
    at.run()
    assert at.selectbox(key=keys.ENDPOINT_PICKER).value == "third"

    at.button(key=keys.DELETE_ENDPOINT).click()
    at.run()
    at.button(key=keys.confirm_button("delete-endpoint:third")).click()
    at.run()
    assert "Deleted endpoint third." in texts(at.success)
    assert at.selectbox(key=keys.ENDPOINT_PICKER).value == "demo", "the first endpoint once the chosen one is gone"


def test_an_endpoint_deleted_elsewhere_is_no_longer_offered(open_page, two_endpoints):
    at = open_page("playground")
    at.selectbox(key=keys.ENDPOINT_PICKER).set_value("second").run()
    two_endpoints.delete_endpoint("second")
    at.run()
    assert not at.exception
    assert at.selectbox(key=keys.ENDPOINT_PICKER).options == ["demo"]
    assert at.selectbox(key=keys.ENDPOINT_PICKER).value == "demo"
